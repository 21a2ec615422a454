-- The transactional outbox: every domain change writes its event here in the same transaction,
-- so the change and its event commit or roll back together. The relay publishes from this table;
-- NOTIFY is only a wake-up hint, and this table stays the source of truth.
--
-- Rows are the CloudEvents 1.0 envelope in columns (crm_server::outbox::StoredEvent::to_cloudevent
-- builds the JSON form); `data` is validated against crm-server/schemas/events/<type>.v<version>.json
-- before it is written.
CREATE TABLE event_outbox (
    -- Order of insertion. Sequence values are taken at insert time but transactions commit in any
    -- order, so a reader must not assume that seq < checkpoint means "already seen": see tx_id.
    seq            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- CloudEvents `id`: unique per event, stable across redeliveries.
    id             uuid        NOT NULL UNIQUE,
    -- CloudEvents `type`, e.g. `sample.status.changed`, and the version of its data schema.
    event_type     text        NOT NULL CHECK (event_type ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$'),
    type_version   integer     NOT NULL CHECK (type_version > 0),
    -- CloudEvents `source` (URI reference), e.g. `crm.customer-management`.
    source         text        NOT NULL CHECK (source <> ''),
    -- The aggregate the event is about; `aggregate_id` is the CloudEvents `subject`.
    aggregate_type text        NOT NULL CHECK (aggregate_type <> ''),
    aggregate_id   text        NOT NULL CHECK (aggregate_id <> ''),
    -- CloudEvents `time`: the writing transaction's timestamp.
    occurred_at    timestamptz NOT NULL DEFAULT now(),
    correlation_id text,
    actor_type     text        NOT NULL CHECK (actor_type IN ('user', 'service', 'system')),
    actor_id       text        NOT NULL CHECK (actor_id <> ''),
    data           jsonb       NOT NULL,
    -- The writing transaction. A reader that only takes rows whose transaction is older than the
    -- oldest one still running (pg_snapshot_xmin(pg_current_snapshot())) never skips an event that
    -- commits late with a lower seq.
    tx_id          xid8        NOT NULL DEFAULT pg_current_xact_id()
);

-- Per-aggregate order for consumers that replay one customer's or sample's history.
CREATE INDEX event_outbox_aggregate_idx ON event_outbox (aggregate_type, aggregate_id, seq);
-- Retention deletes by age.
CREATE INDEX event_outbox_occurred_at_idx ON event_outbox (occurred_at);

COMMENT ON TABLE event_outbox IS 'Transactional outbox of CloudEvents 1.0; written only through crm_server::outbox::enqueue';
