-- Cook&Fresh product samples: the product catalog, sample kits, sample requests with their items
-- and status history. The newest sample's status is mirrored into the hot projection in the
-- writing transaction (crm_server::db::samples).

-- The read-only product catalog (changed by migrations only).
CREATE TABLE product (
    sku        text    PRIMARY KEY CHECK (sku ~ '^CF-[0-9]{3,5}$'),
    name       text    NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- As printed on the pack: "2 x 1,5 kg Beutel".
    pack_size  text    NOT NULL,
    category   text    NOT NULL CHECK (category IN ('SOUP', 'SAUCE', 'MAIN', 'SIDE', 'DESSERT')),
    active     boolean NOT NULL DEFAULT true
);

INSERT INTO product (sku, name, pack_size, category) VALUES
('CF-1001', 'Rinderbrühe klar', '4 x 2,5 kg Beutel', 'SOUP'),
('CF-1002', 'Kürbis-Ingwer-Suppe', '4 x 2,5 kg Beutel', 'SOUP'),
('CF-2001', 'Sauce Hollandaise', '6 x 1 l Tetra', 'SAUCE'),
('CF-2002', 'Rahmsauce mit Waldpilzen', '6 x 1 l Tetra', 'SAUCE'),
('CF-2003', 'Bratenjus dunkel', '6 x 1 l Tetra', 'SAUCE'),
('CF-3001', 'Schweinebraten in Dunkelbiersauce', '2 x 3 kg GN-Schale', 'MAIN'),
('CF-3002', 'Rinderrouladen klassisch', '2 x 2,4 kg GN-Schale', 'MAIN'),
('CF-3003', 'Gemüse-Linsen-Curry vegan', '2 x 3 kg GN-Schale', 'MAIN'),
('CF-4001', 'Kartoffelknödel halb und halb', '4 x 1,5 kg Beutel', 'SIDE'),
('CF-4002', 'Rotkohl mit Apfel', '4 x 2 kg Beutel', 'SIDE'),
('CF-4003', 'Spätzle', '4 x 2 kg Beutel', 'SIDE'),
('CF-5001', 'Apfelstrudel', '2 x 12 Portionen', 'DESSERT'),
('CF-5002', 'Kaiserschmarrn', '4 x 1 kg Beutel', 'DESSERT');

-- Sample kits: a fixed set of items to send without listing them.
CREATE TABLE sample_kit (
    id          text    PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name        text    NOT NULL UNIQUE,
    -- The kit of a request that names neither items nor a kit (the seeds: "Cook&Fresh Basis 5er").
    is_default  boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX sample_kit_one_default_idx ON sample_kit (is_default) WHERE is_default;

CREATE TABLE sample_kit_item (
    kit_id    text NOT NULL REFERENCES sample_kit (id),
    sku       text NOT NULL REFERENCES product (sku),
    quantity  int  NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
    PRIMARY KEY (kit_id, sku)
);

INSERT INTO sample_kit (id, name, is_default) VALUES
('cf-basis-5', 'Cook&Fresh Basis 5er', true),
('cf-festtag', 'Cook&Fresh Festtags-Menü', false);
INSERT INTO sample_kit_item (kit_id, sku, quantity) VALUES
('cf-basis-5', 'CF-1001', 1), ('cf-basis-5', 'CF-2001', 1), ('cf-basis-5', 'CF-3001', 1),
('cf-basis-5', 'CF-4001', 1), ('cf-basis-5', 'CF-5001', 1),
('cf-festtag', 'CF-2003', 1), ('cf-festtag', 'CF-3002', 1), ('cf-festtag', 'CF-4002', 1),
('cf-festtag', 'CF-4001', 1);

CREATE TABLE sample_request (
    id                uuid        PRIMARY KEY,
    customer_id       uuid        NOT NULL REFERENCES customer (id) ON DELETE CASCADE,
    kit_id            text        REFERENCES sample_kit (id),
    status            text        NOT NULL DEFAULT 'REQUESTED' CHECK (status IN ('REQUESTED', 'PACKED', 'SHIPPED',
                                  'DELIVERED', 'FEEDBACK_SUCCESS', 'FEEDBACK_NEUTRAL', 'FEEDBACK_FAIL', 'CANCELED')),
    delivery_date     date        NOT NULL,
    delivery_address  text        CHECK (length(delivery_address) <= 500),
    contact_email     text        CHECK (length(contact_email) <= 254),
    notes             text        CHECK (length(notes) <= 4000),
    -- When the latest status change happened in the world (the client's eventAt): orders a
    -- customer's samples for the projection, and never moves backwards.
    last_event_at     timestamptz NOT NULL,
    delivered_at      timestamptz,
    -- The follow-up SLA of a delivery: product-test feedback within 5 business days of the
    -- customer's state, due at the end of this day (Europe/Berlin); met when feedback arrives.
    followup_due      date,
    followup_done_at  timestamptz,
    version           bigint      NOT NULL DEFAULT 1,
    -- The inbound event (lead.converted) an automation requested this sample for: a replayed or
    -- re-driven event has no second effect.
    origin_event_id   uuid        UNIQUE,
    created_by        text        NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- Lists: by customer and by status, newest first (ids are UUIDv7, so id order is creation order).
CREATE INDEX sample_customer_idx ON sample_request (customer_id, id DESC);
CREATE INDEX sample_status_idx   ON sample_request (status, id DESC);
-- Overdue follow-ups.
CREATE INDEX sample_followup_idx ON sample_request (followup_due) WHERE followup_done_at IS NULL;
-- The recompute of the projection: each customer's newest sample.
CREATE INDEX sample_latest_idx   ON sample_request (customer_id, last_event_at DESC, id DESC);

-- Items and history carry the customer, so that their access follows it directly.
CREATE TABLE sample_item (
    sample_id    uuid NOT NULL REFERENCES sample_request (id) ON DELETE CASCADE,
    customer_id  uuid NOT NULL,
    sku          text NOT NULL REFERENCES product (sku),
    quantity     int  NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
    PRIMARY KEY (sample_id, sku)
);

CREATE TABLE sample_status_change (
    sample_id       uuid        NOT NULL REFERENCES sample_request (id) ON DELETE CASCADE,
    customer_id     uuid        NOT NULL,
    seq             int         NOT NULL,
    old_status      text,
    new_status      text        NOT NULL,
    event_at        timestamptz NOT NULL,
    actor           text        NOT NULL,
    correlation_id  text,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sample_id, seq)
);

-- Which sample the projection's sample_status comes from: the newest by (last_event_at, id), so
-- that the incremental update and the recompute pick the same one.
ALTER TABLE cm_customer_hot_proj ADD COLUMN latest_sample_id uuid;

CALL crm_protect_customer_rows('sample_request', 'customer_id');
CALL crm_protect_customer_rows('sample_item', 'customer_id');
CALL crm_protect_customer_rows('sample_status_change', 'customer_id');

GRANT SELECT ON product, sample_kit, sample_kit_item TO crm_app;
GRANT SELECT, INSERT, UPDATE ON sample_request TO crm_app;
GRANT SELECT, INSERT ON sample_item, sample_status_change TO crm_app;
