-- The settings registry (crm_server::http::settings): key/values scoped global -> tenant:<t> ->
-- org:<t>:<o>, each value valid under its key's JSON Schema (checked by the server), versioned
-- and audited; the operator reads the effective values of a tenant as its gateway policy.
--
-- Versions: every change (set or delete) takes the next number of one registry-wide counter
-- (setting_version). A setting's version is the number of its last change, and each scope keeps
-- the number of its last change (setting_scope); the effective version of a tenant and org is the
-- highest of its scopes'. The counter is a row, not a sequence, on purpose: a writer takes its
-- number with the row's lock and holds it until it commits, so numbers are handed out in commit
-- order. With a sequence, a change that took number 10 could commit after one that took 11, and a
-- reader who had already seen 11 would never notice 10 (its effective version would not move).
-- Settings change a few times a day, so one writer at a time costs nothing; and it makes two
-- writers racing on one key see each other (the second finds the first's version and gets 412).

-- The platform role (the operator, the platform team): it reads the registry and its events and
-- no customer data. Set by crm_server::db::scope like crm.admin.
CREATE FUNCTION crm_scope_platform() RETURNS boolean LANGUAGE sql STABLE
    AS $$ SELECT coalesce(nullif(current_setting('crm.platform', true), ''), 'off')::boolean $$;

CREATE TABLE setting_version (
    id    boolean PRIMARY KEY DEFAULT true CHECK (id),
    -- The number of the last change; the next change takes last + 1.
    last  bigint  NOT NULL DEFAULT 0 CHECK (last >= 0)
);
INSERT INTO setting_version DEFAULT VALUES;

-- The current values. The scope is its URL path segment (crm_server::domain::settings); tenant
-- and org ids are DNS labels.
CREATE TABLE setting (
    scope       text        NOT NULL CHECK (scope ~ '^(global|tenant:[a-z0-9]([-a-z0-9]*[a-z0-9])?|org:[a-z0-9]([-a-z0-9]*[a-z0-9])?:[a-z0-9]([-a-z0-9]*[a-z0-9])?)$'
                                            AND length(scope) <= 131),
    key         text        NOT NULL CHECK (key ~ '^[a-z][A-Za-z0-9]*(\.[a-z][A-Za-z0-9]*)*$'),
    value       jsonb       NOT NULL,
    -- The number of the change that wrote this value: the ETag.
    version     bigint      NOT NULL CHECK (version > 0),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    -- `user:<token subject>`.
    updated_by  text        NOT NULL,
    PRIMARY KEY (scope, key)
);

-- Every change, kept after the setting is deleted: who, when, old and new value, the request's
-- correlation id. Keyed by the change's number, which no other change ever has.
CREATE TABLE setting_history (
    version         bigint      PRIMARY KEY CHECK (version > 0),
    scope           text        NOT NULL,
    key             text        NOT NULL,
    action          text        NOT NULL CHECK (action IN ('set', 'delete')),
    -- null: the setting was new (set) ...
    old_value       jsonb,
    -- ... or is gone (delete).
    new_value       jsonb,
    actor           text        NOT NULL,
    correlation_id  text,
    at              timestamptz NOT NULL DEFAULT now(),
    CHECK ((action = 'set') = (new_value IS NOT NULL)),
    CHECK (action = 'set' OR old_value IS NOT NULL)
);

-- A key's history at a scope, newest first.
CREATE INDEX setting_history_key_idx ON setting_history (scope, key, version DESC);

-- The number of the last change at each scope that ever had one.
CREATE TABLE setting_scope (
    scope    text   PRIMARY KEY,
    version  bigint NOT NULL CHECK (version > 0)
);

-- Settings are no customer's: admins read and write them, the platform role reads them, every
-- other scope sees nothing (the server checks the roles too; these policies are what holds if it
-- did not). Later tables of the registry call this in the migration that creates them.
CREATE PROCEDURE crm_protect_settings(tbl regclass) LANGUAGE plpgsql
AS $$
DECLARE
    name text := (SELECT relname FROM pg_class WHERE oid = tbl);
BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
    EXECUTE format('CREATE POLICY %I ON %s FOR SELECT TO crm_app USING ((SELECT crm_scope_admin()) OR (SELECT crm_scope_platform()))',
                   name || '_read', tbl);
    EXECUTE format('CREATE POLICY %I ON %s FOR ALL TO crm_app USING ((SELECT crm_scope_admin())) WITH CHECK ((SELECT crm_scope_admin()))',
                   name || '_write', tbl);
END
$$;

CALL crm_protect_settings('setting_version');
CALL crm_protect_settings('setting');
CALL crm_protect_settings('setting_history');
CALL crm_protect_settings('setting_scope');

-- The event feeds (replay, live stream) show an event with its customer; settings.changed has no
-- customer and no territory, so until now only admins (outbox_read) saw it. The platform role sees
-- the settings events too, and nothing else of the outbox; sales reps, team leads and chain
-- managers do not see them.
CREATE POLICY outbox_settings_feed ON event_outbox FOR SELECT TO crm_app
    USING ((SELECT crm_scope_platform()) AND aggregate_type = 'settings');

GRANT SELECT, UPDATE ON setting_version TO crm_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON setting TO crm_app;
GRANT SELECT, INSERT ON setting_history TO crm_app;
GRANT SELECT, INSERT, UPDATE ON setting_scope TO crm_app;
GRANT EXECUTE ON FUNCTION crm_scope_platform() TO crm_app;
-- The policy builder is for migrations (run by the owner), not for the server.
REVOKE ALL ON PROCEDURE crm_protect_settings(regclass) FROM PUBLIC;
