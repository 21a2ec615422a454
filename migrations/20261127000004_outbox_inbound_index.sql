-- no-transaction
-- An inbound event is identified by its CloudEvents source and id: a resent one is recognised.
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS event_outbox_inbound_idx ON event_outbox (inbound_id) WHERE inbound_id IS NOT NULL;
