-- Typed sales activities (the seeds' four kinds) with their SLA, and full-text search over
-- their text in German.

CREATE TABLE activity (
    id             uuid        PRIMARY KEY,
    customer_id    uuid        NOT NULL REFERENCES customer (id) ON DELETE CASCADE,
    kind           text        NOT NULL CHECK (kind IN ('PRODUCTTEST_FEEDBACK', 'ROI_CONSULTATION',
                                                        'MENU_INTEGRATION', 'DECISION_MAKER_ALIGNMENT')),
    occurred_at    timestamptz NOT NULL,
    outcome        text        NOT NULL,
    note           text        CHECK (length(note) <= 4000),
    -- The kind's own members as the API shows them (crm_server::domain::activity), validated by
    -- the server before they are written.
    payload        jsonb       NOT NULL,
    -- Product-test feedback: the sample it is about.
    sample_id      uuid        REFERENCES sample_request (id) ON DELETE SET NULL,
    -- The earlier activity this one follows up (and whose SLA it meets).
    follow_up_of   uuid        REFERENCES activity (id) ON DELETE SET NULL,
    -- The SLA (crm_server::domain::sla): due by the end of this German date; met when.
    sla_due        date,
    sla_met_at     timestamptz,
    created_by     text        NOT NULL,
    correlation_id text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    -- The note and every string of the payload, for `q` (German stemming: "Saucen" finds "Sauce").
    search         tsvector    GENERATED ALWAYS AS (
        to_tsvector('german'::regconfig, coalesce(note, '')) || jsonb_to_tsvector('german'::regconfig, payload, '["string"]')
    ) STORED
);

-- A customer's timeline, newest first, by kind and time.
CREATE INDEX activity_customer_idx      ON activity (customer_id, occurred_at DESC, id DESC);
CREATE INDEX activity_customer_kind_idx ON activity (customer_id, kind, occurred_at DESC, id DESC);
CREATE INDEX activity_search_idx        ON activity USING gin (search);
-- Open SLAs by due date (overdue lists, the cockpit).
CREATE INDEX activity_sla_open_idx      ON activity (sla_due) WHERE sla_met_at IS NULL AND sla_due IS NOT NULL;
-- Retention deletes by age.
CREATE INDEX activity_occurred_idx      ON activity (occurred_at);

CALL crm_protect_customer_rows('activity', 'customer_id');
GRANT SELECT, INSERT, UPDATE ON activity TO crm_app;
