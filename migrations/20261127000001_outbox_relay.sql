-- The relay's side of the outbox (crm_server::outbox::relay and ::consumer).
--
-- Sequence values are taken when a row is inserted, but transactions commit in any order, so seq
-- order is not an order a reader can follow without skipping a late commit. The relay therefore
-- publishes: it takes committed events without a position in seq order and gives them dense
-- positions, one batch per transaction, as the only writer of positions (the single row of
-- outbox_relay serialises relays). Consumers, the replay and the live stream read by position:
-- a position is visible only once every lower one is, so a reader never skips one. Events of one
-- aggregate are written under that aggregate's row lock, so a later one is inserted (and seq'd)
-- after the earlier one committed, and gets the higher position.
ALTER TABLE event_outbox ADD COLUMN position bigint;
ALTER TABLE event_outbox ADD COLUMN published_at timestamptz;
-- The customer an event is about, for the feeds' access rule (readable with the customer).
ALTER TABLE event_outbox ADD COLUMN customer_id uuid;

CREATE TABLE outbox_relay (
    id             boolean     PRIMARY KEY DEFAULT true CHECK (id),
    last_position  bigint      NOT NULL DEFAULT 0,
    published_at   timestamptz
);
INSERT INTO outbox_relay DEFAULT VALUES;

-- Where each named consumer stands. A consumer's handler and its checkpoint commit in one
-- transaction; the row lock keeps two instances of one consumer from running at once.
CREATE TABLE consumer_checkpoint (
    consumer       text        PRIMARY KEY CHECK (consumer ~ '^[a-z][a-z0-9.-]{0,62}$'),
    position       bigint      NOT NULL DEFAULT 0,
    -- The event the handler keeps failing on, and how often it has.
    failing_position bigint,
    attempts       int         NOT NULL DEFAULT 0,
    last_error     text,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Events a handler gave up on after its retries, with the error; re-driven by
-- `crm-server events redrive`.
CREATE TABLE consumer_dead_letter (
    consumer     text        NOT NULL REFERENCES consumer_checkpoint (consumer),
    position     bigint      NOT NULL,
    event_id     uuid        NOT NULL,
    attempts     int         NOT NULL,
    error        text        NOT NULL,
    failed_at    timestamptz NOT NULL DEFAULT now(),
    redriven_at  timestamptz,
    PRIMARY KEY (consumer, position)
);

-- Inbound events (POST /events/inbound) are written to the outbox like our own; their
-- CloudEvents source and id identify them, so a resent one is recognised.
ALTER TABLE event_outbox ADD COLUMN inbound_id text;

-- The feeds (replay, live stream) show published events of customers the caller can read; the
-- relay (the server's own admin scope) publishes.
CREATE POLICY outbox_feed ON event_outbox FOR SELECT TO crm_app
    USING (position IS NOT NULL AND customer_id IS NOT NULL
           AND EXISTS (SELECT 1 FROM customer c WHERE c.id = event_outbox.customer_id));
CREATE POLICY outbox_publish ON event_outbox FOR UPDATE TO crm_app
    USING ((SELECT crm_scope_admin())) WITH CHECK ((SELECT crm_scope_admin()));
GRANT UPDATE (position, published_at) ON event_outbox TO crm_app;
GRANT SELECT, UPDATE ON outbox_relay TO crm_app;
GRANT SELECT, INSERT, UPDATE ON consumer_checkpoint TO crm_app;
GRANT SELECT, INSERT, UPDATE ON consumer_dead_letter TO crm_app;
