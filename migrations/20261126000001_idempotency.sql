-- Idempotency-Key (IETF httpapi draft): the stored outcome of a POST or PATCH, replayed to a
-- retry with the same key. A key is scoped to the caller and the request's method and path, and
-- bound to a fingerprint of the body. The row is written in the same transaction as the request's
-- own changes, so a change and the response that reports it commit together (a retry after a
-- crash either finds both or neither); a concurrent duplicate is refused by an advisory lock the
-- first request holds until it commits (crm_server::db::idempotency).
CREATE TABLE idempotency_key (
    owner_subject text        NOT NULL,
    -- `POST /samples`, `PATCH /samples/<id>/status`: the concrete path, so one key used on two
    -- resources is two keys.
    request       text        NOT NULL CHECK (length(request) BETWEEN 1 AND 2048),
    key           text        NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    -- SHA-256 of the request body.
    fingerprint   bytea       NOT NULL CHECK (length(fingerprint) = 32),
    status        smallint    NOT NULL CHECK (status BETWEEN 200 AND 599),
    -- The response headers worth replaying (Location, ETag, Content-Type), as [[name, value], ...].
    headers       jsonb       NOT NULL,
    body          bytea       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    PRIMARY KEY (owner_subject, request, key)
);

-- The periodic purge deletes by expiry.
CREATE INDEX idempotency_key_expires_idx ON idempotency_key (expires_at);

-- Each caller sees and writes only their own keys; the purge runs with the server's own (admin)
-- scope.
ALTER TABLE idempotency_key ENABLE ROW LEVEL SECURITY;
CREATE POLICY idempotency_key_own ON idempotency_key FOR ALL TO crm_app
    USING (owner_subject = (SELECT crm_scope_user()) OR (SELECT crm_scope_admin()))
    WITH CHECK (owner_subject = (SELECT crm_scope_user()));
GRANT SELECT, INSERT, DELETE ON idempotency_key TO crm_app;
