-- no-transaction
-- The readers' order (consumers, replay, live stream): one event per position.
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS event_outbox_position_idx ON event_outbox (position) WHERE position IS NOT NULL;
