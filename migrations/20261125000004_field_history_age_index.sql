-- no-transaction
-- Retention deletes field history by age; built without blocking the writers that append to it.
CREATE INDEX CONCURRENTLY IF NOT EXISTS field_value_history_changed_at_idx ON field_value_history (changed_at);
