-- Publishing without rewriting events.
--
-- The relay used to publish by updating each event row with its position. That update is never
-- HOT (position is indexed), so every published event was written a second time in full, with an
-- entry in each of the outbox's indexes, while the producers were writing: it cost the write path
-- a third of its throughput and capped the relay at about a thousand events a second on two cores.
--
-- Now an insert into event_outbox also queues its seq in the narrow, unlogged `outbox_pending` (a
-- trigger, so that no writer can forget it), and the relay moves a batch of seqs from there into the
-- append-only `outbox_log`, giving them their positions in one statement. Readers follow the log
-- and join the event by seq. The rule is unchanged: the relay is the only writer of positions
-- (serialised by the row of outbox_relay), a batch takes the queued events its statement sees in
-- seq order, and a late commit with a lower seq is seen by a later batch and gets a higher
-- position, so a reader never skips one.
--
-- Upgrade: the relay role must not run old and new binaries side by side (an old relay would
-- publish by the column again); stop the old relay, then start the new one. The columns
-- event_outbox.position and .published_at keep the positions published before this migration,
-- copied into the log below, and are no longer written.

-- The queue is UNLOGGED: queueing a seq writes no WAL, so the writer's transaction costs what it
-- did without it (a logged queue added a fifth to the WAL of a one-event transaction). Its
-- content is lost on a crash, a failover or a restore without unlogged data; the row with seq 0
-- is the sign that it is intact. When the relay finds it missing, it queues again every event the
-- log does not hold (crm_server::outbox::relay::publish_batch), so nothing is lost, only found
-- late by one scan.
CREATE UNLOGGED TABLE outbox_pending (
    seq bigint PRIMARY KEY
);
-- A queue: rows live for milliseconds, so vacuum it by the number of dead rows, not by a share of
-- a table that is nearly always empty.
ALTER TABLE outbox_pending SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000,
                                autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 10000);
INSERT INTO outbox_pending (seq) VALUES (0);

CREATE TABLE outbox_log (
    position     bigint      PRIMARY KEY,
    -- One position per event: a second publication of a seq fails the relay's batch.
    seq          bigint      NOT NULL UNIQUE,
    published_at timestamptz NOT NULL DEFAULT now()
);

-- Statement-level with a transition table: one insert into the queue per writing statement,
-- however many events it wrote. Runs as the writer (crm_app), which may only insert here.
CREATE FUNCTION crm_outbox_queue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox_pending (seq) SELECT seq FROM written;
    RETURN NULL;
END
$$;
CREATE TRIGGER event_outbox_queue AFTER INSERT ON event_outbox
    REFERENCING NEW TABLE AS written FOR EACH STATEMENT EXECUTE FUNCTION crm_outbox_queue();

INSERT INTO outbox_log (position, seq, published_at)
    SELECT position, seq, coalesce(published_at, occurred_at) FROM event_outbox WHERE position IS NOT NULL;
INSERT INTO outbox_pending (seq) SELECT seq FROM event_outbox WHERE position IS NULL;

-- The feeds read the log and join the events; an event is readable with its customer. (Whether
-- it is published is the log's business now, not the row's.)
DROP POLICY outbox_feed ON event_outbox;
CREATE POLICY outbox_feed ON event_outbox FOR SELECT TO crm_app
    USING (customer_id IS NOT NULL AND EXISTS (SELECT 1 FROM customer c WHERE c.id = event_outbox.customer_id));

-- Neither table holds anything but numbers and times, so neither has row-level security; the
-- relay (under the server's admin scope) alone moves rows between them, and retention removes
-- the log rows of the events it deletes.
GRANT SELECT, INSERT, DELETE ON outbox_pending, outbox_log TO crm_app;
