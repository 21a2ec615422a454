-- Results of the hot projection's checks (the background check of the all/relay roles, the
-- staleness endpoint, `crm-server projection check`), so that every replica can tell how far
-- the projection lags: the cockpit's `stale` flag reads the newest one. Holds counts and times,
-- no customer data.
CREATE TABLE projection_check (
    id                        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    checked_at                timestamptz NOT NULL DEFAULT now(),
    rows_checked              bigint      NOT NULL CHECK (rows_checked >= 0),
    drifted_rows              bigint      NOT NULL CHECK (drifted_rows >= 0),
    oldest_unrefreshed_change timestamptz
);

CREATE INDEX projection_check_at_idx ON projection_check (checked_at DESC);

GRANT SELECT, INSERT ON projection_check TO crm_app;
