-- no-transaction
-- The relay's work list: committed events without a position, in seq order. Built without
-- blocking writers.
CREATE INDEX CONCURRENTLY IF NOT EXISTS event_outbox_unpublished_idx ON event_outbox (seq) WHERE position IS NULL;
