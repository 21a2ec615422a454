-- no-transaction
-- A rep's own customers, for the sibling rule of the policies; built without blocking writers.
CREATE INDEX CONCURRENTLY IF NOT EXISTS customer_owner_idx ON customer (owner_subject) WHERE owner_subject IS NOT NULL;
