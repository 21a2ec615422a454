-- A stored outcome is bound to the access rights it was made with, not only to the subject: a
-- token with the same subject but other roles, territories or chains (a narrower one after a
-- role change, say) must never receive a stored reply it could not read directly
-- (crm_server::http::idempotency). SHA-256 of the caller's scope; NULL on rows written by a
-- binary from before this column, which are then never replayed (they expire within a day).
ALTER TABLE idempotency_key ADD COLUMN scope_fingerprint bytea;
ALTER TABLE idempotency_key ADD CONSTRAINT idempotency_key_scope_fingerprint_length
    CHECK (length(scope_fingerprint) = 32) NOT VALID;
ALTER TABLE idempotency_key VALIDATE CONSTRAINT idempotency_key_scope_fingerprint_length;
