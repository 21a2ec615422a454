-- no-transaction
-- The relay no longer looks for events without a position (20261202000001_outbox_log.sql), and
-- every insert into event_outbox still added an entry to this partial index.
-- contract: only the old relay used it, and the old relay must be stopped before the new one runs.
DROP INDEX CONCURRENTLY IF EXISTS event_outbox_unpublished_idx;
