-- Sync reports (crm_server::http::settings::sync_reports): the operator says that it applied, or
-- could not apply, a tenant's effective settings to a TenantPolicy. Each report is the CRM's audit
-- entry of a sync, beside the Kubernetes Event the operator records: who reported (the token's
-- subject), when, under which correlation id, which effective version, which keys were applied
-- or rejected and what changed. Reports are appended and never changed.
--
-- The body is checked by the server (crm_server::domain::settings::sync); the constraints below
-- repeat its bounds so that no other writer can store what the server would refuse.
CREATE TABLE setting_sync_report (
    -- A UUIDv7, made by the server.
    id              uuid        PRIMARY KEY,
    -- `<namespace>/<name>` of the TenantPolicy: two DNS subdomains.
    policy          text        NOT NULL CHECK (
                        policy ~ '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'
                        AND length(policy) <= 507),
    -- Tenant and org ids, DNS labels as in the registry's scopes.
    tenant          text        NOT NULL CHECK (tenant ~ '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' AND length(tenant) <= 63),
    org             text        CHECK (org ~ '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' AND length(org) <= 63),
    -- The effective version the operator applied (or tried to): 0 when the chain never changed.
    version         bigint      NOT NULL CHECK (version >= 0),
    outcome         text        NOT NULL CHECK (outcome IN ('applied', 'failed')),
    -- The keys in force, in the order the operator tried them.
    applied         text[]      NOT NULL CHECK (cardinality(applied) <= 100),
    -- The keys not applied: [{"key", "scope", "reason"}].
    rejected        jsonb       NOT NULL CHECK (jsonb_typeof(rejected) = 'array' AND jsonb_array_length(rejected) <= 100),
    -- What changed in the policy, one line per field: `gateway.rateLimit: {..} -> {..}`.
    changes         text[]      NOT NULL CHECK (cardinality(changes) <= 100),
    detail          text        CHECK (length(detail) <= 8000),
    -- `user:<token subject>`.
    actor           text        NOT NULL,
    correlation_id  text,
    at              timestamptz NOT NULL DEFAULT now()
);

-- The lists, newest first: all reports, a tenant's, a policy's.
CREATE INDEX setting_sync_report_at_idx ON setting_sync_report (at DESC, id DESC);
CREATE INDEX setting_sync_report_tenant_idx ON setting_sync_report (tenant, at DESC, id DESC);
CREATE INDEX setting_sync_report_policy_idx ON setting_sync_report (policy, at DESC, id DESC);

-- Like the registry's other tables: admins read and write, the platform role reads, every other
-- scope sees nothing. And the one write the platform role may do anywhere: add a report, under
-- its own name.
CALL crm_protect_settings('setting_sync_report');
CREATE POLICY setting_sync_report_platform_insert ON setting_sync_report FOR INSERT TO crm_app
    WITH CHECK ((SELECT crm_scope_platform()) AND actor = 'user:' || (SELECT crm_scope_user()));

-- Append only: the server's login can neither change nor remove a report.
GRANT SELECT, INSERT ON setting_sync_report TO crm_app;
