-- Retention (DSGVO), crm_server::retention: contacts of long-inactive customers are anonymised,
-- not deleted, so the account's history stays readable; every run of a policy is recorded.
ALTER TABLE contact ADD COLUMN anonymised_at timestamptz;

CREATE TABLE retention_run (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    policy       text        NOT NULL,
    dry_run      boolean     NOT NULL,
    -- The run's "now": every cutoff is computed from it.
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz NOT NULL DEFAULT now(),
    -- Rows the policy changed (or would change, in a dry run).
    affected     bigint      NOT NULL CHECK (affected >= 0),
    -- The policy's parameters and up to 20 affected keys.
    details      jsonb       NOT NULL
);

CREATE INDEX retention_run_policy_idx ON retention_run (policy, started_at DESC);
