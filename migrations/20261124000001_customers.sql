-- Customers (accounts), their contacts, dynamic fields and the hot projection.
--
-- An account is a chain (is_chain) with locations (parent_account_id), or a single restaurant,
-- hotel or caterer. Territory is a sales territory code (BY, NRW, BER, ...): the unit of access
-- that row-level security is built on.

CREATE TABLE customer (
    id                         uuid        PRIMARY KEY,
    name                       text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    segment                    text        NOT NULL
        CHECK (segment IN ('RESTAURANT', 'HOTEL', 'CATERER', 'CANTEEN', 'OTHER')),
    is_chain                   boolean     NOT NULL DEFAULT false,
    -- Set on a location of a chain. The parent must be a chain (checked by the server in the
    -- writing transaction, which locks the parent row).
    parent_account_id          uuid        REFERENCES customer (id),
    territory                  text        NOT NULL CHECK (territory ~ '^[A-Z]{2,3}$'),
    street                     text,
    postal_code                text,
    city                       text,
    -- ISO 3166-1 alpha-2, and the ISO 3166-2 subdivision (DE-BY) whose public holidays apply.
    country                    text        NOT NULL DEFAULT 'DE' CHECK (country ~ '^[A-Z]{2}$'),
    region                     text        CHECK (region ~ '^[A-Z]{2}-[A-Z0-9]{1,3}$'),
    contactability_status      text        NOT NULL DEFAULT 'CONTACTABLE'
        CHECK (contactability_status IN ('CONTACTABLE', 'SOFT_BOUNCE', 'HARD_BOUNCE', 'OPTED_OUT')),
    alternate_channel_required boolean     NOT NULL DEFAULT false,
    -- Optimistic concurrency: the customer's ETag; every write of these columns bumps it. (The
    -- version of the dynamic fields lives on the hot projection row, see there.)
    version                    bigint      NOT NULL DEFAULT 1,
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now(),
    CHECK (NOT (is_chain AND parent_account_id IS NOT NULL)),
    CHECK (parent_account_id IS DISTINCT FROM id)
) WITH (fillfactor = 90);

CREATE INDEX customer_parent_idx ON customer (parent_account_id, id) WHERE parent_account_id IS NOT NULL;

CREATE TABLE contact (
    id          uuid        PRIMARY KEY,
    first_name  text        NOT NULL CHECK (length(first_name) BETWEEN 1 AND 100),
    last_name   text        NOT NULL CHECK (length(last_name) BETWEEN 1 AND 100),
    email       text        CHECK (length(email) <= 254),
    phone       text        CHECK (length(phone) <= 40),
    version     bigint      NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- A contact may hold several roles at several accounts (the seeds' contact_roles).
CREATE TABLE contact_roles (
    contact_id  uuid NOT NULL REFERENCES contact (id) ON DELETE CASCADE,
    account_id  uuid NOT NULL REFERENCES customer (id) ON DELETE CASCADE,
    role        text NOT NULL CHECK (role IN ('HEAD_CHEF', 'BUYER', 'MANAGING_DIRECTOR', 'OWNER')),
    PRIMARY KEY (account_id, contact_id, role)
);

CREATE INDEX contact_roles_contact_idx ON contact_roles (contact_id);

-- The catalog of dynamic fields. `schema` is the JSON Schema (draft 2020-12) of a value;
-- `hot` fields are mirrored into cm_customer_hot_proj; `writable_by` lists the roles that may
-- write a field (empty: derived, read-only through the API).
CREATE TABLE field_catalog (
    key          text    PRIMARY KEY CHECK (key ~ '^[a-z][a-z0-9_]{0,62}$'),
    label        text    NOT NULL,
    description  text    NOT NULL DEFAULT '',
    schema       jsonb   NOT NULL,
    hot          boolean NOT NULL DEFAULT false,
    writable_by  text[]  NOT NULL DEFAULT '{}'
);

INSERT INTO field_catalog (key, label, description, schema, hot, writable_by) VALUES
('sample_status', 'Sample status',
 'Status of the newest product sample; derived from samples, read-only here.',
 '{"type": "string", "enum": ["REQUESTED", "PACKED", "SHIPPED", "DELIVERED", "FEEDBACK_SUCCESS", "FEEDBACK_NEUTRAL", "FEEDBACK_FAIL", "CANCELED"]}',
 true, '{}'),
('roi_potential', 'ROI potential',
 'Expected savings for the customer: a bucket and the monthly value in euros.',
 '{"type": "object", "additionalProperties": false, "required": ["bucket", "value"], "properties": {"bucket": {"enum": ["LOW", "MID", "HIGH"]}, "value": {"type": "number", "minimum": 0, "maximum": 9999999999.99}}}',
 true, '{sales-rep,team-lead,chain-manager,admin}'),
('decision_makers', 'Decision makers',
 'How many decision makers are known, and whether the executive level is aligned.',
 '{"type": "object", "additionalProperties": false, "required": ["count", "has_exec_alignment"], "properties": {"count": {"type": "integer", "minimum": 0, "maximum": 1000}, "has_exec_alignment": {"type": "boolean"}}}',
 true, '{sales-rep,team-lead,chain-manager,admin}'),
('seasonal_menu_cycle', 'Seasonal menu cycle',
 'The window in which the customer changes its seasonal menu.',
 '{"type": "object", "additionalProperties": false, "required": ["season_start", "season_end"], "properties": {"season_start": {"type": "string", "format": "date"}, "season_end": {"type": "string", "format": "date"}}}',
 true, '{sales-rep,team-lead,chain-manager,admin}'),
('current_supplier_contracts', 'Current supplier contract',
 'The renewal date of the customer''s contract with its current supplier, and whether it is exclusive.',
 '{"type": "object", "additionalProperties": false, "required": ["renewal_date", "exclusivity"], "properties": {"renewal_date": {"type": "string", "format": "date"}, "exclusivity": {"type": "boolean"}}}',
 true, '{team-lead,chain-manager,admin}'),
('menu_notes', 'Menu notes',
 'Free notes on the current menu and where Cook&Fresh products could fit.',
 '{"type": "string", "maxLength": 4000}',
 false, '{sales-rep,team-lead,chain-manager,admin}'),
('kitchen_profile', 'Kitchen profile',
 'Size of the kitchen team and the number of covers per day.',
 '{"type": "object", "additionalProperties": false, "properties": {"staff": {"type": "integer", "minimum": 0, "maximum": 1000}, "covers_per_day": {"type": "integer", "minimum": 0, "maximum": 100000}}}',
 false, '{sales-rep,team-lead,chain-manager,admin}'),
('preferred_delivery_days', 'Preferred delivery days',
 'Weekdays on which deliveries are accepted.',
 '{"type": "array", "uniqueItems": true, "maxItems": 7, "items": {"enum": ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]}}',
 false, '{sales-rep,team-lead,chain-manager,admin}'),
('price_agreement', 'Price agreement',
 'Negotiated price tier and discount; contract data for chain managers.',
 '{"type": "object", "additionalProperties": false, "required": ["tier"], "properties": {"tier": {"enum": ["LIST", "SILVER", "GOLD", "PLATINUM"]}, "discount_percent": {"type": "number", "minimum": 0, "maximum": 50}}}',
 false, '{chain-manager,admin}');

-- Current values of dynamic fields (the seeds' field_values; the surrogate id is dropped, the
-- pair is the key). `field_key` has no foreign key to the catalog on purpose: the server checks
-- every key against the catalog before writing, and a foreign key would take a KEY SHARE lock on
-- the same few catalog rows in every writing transaction, which turns into multixact churn under
-- concurrent writers.
CREATE TABLE field_values (
    customer_id  uuid        NOT NULL REFERENCES customer (id) ON DELETE CASCADE,
    field_key    text        NOT NULL,
    value        jsonb       NOT NULL,
    updated_by   text        NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_id, field_key)
);

-- Every change of a field value: who, when, under which correlation id, from what to what.
-- A NULL value means "absent" (before the first write, after a removal). No foreign key to
-- customer: its check would lock (and dirty) the customer's row on every field write, doubling
-- the statement's cost; the rows are only ever written by the field write that also holds the
-- customer's projection row, and retention removes them together with the customer.
CREATE TABLE field_value_history (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id     uuid        NOT NULL,
    field_key       text        NOT NULL,
    old_value       jsonb,
    new_value       jsonb,
    actor           text        NOT NULL,
    correlation_id  text,
    changed_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX field_value_history_customer_idx ON field_value_history (customer_id, id DESC);

-- The hot projection: one row per customer with the hot fields as columns, for search. Written
-- in the same transaction as the change it reflects, one statement touching only the columns of
-- the fields that changed (crm_server::domain::projection). `name_key` and `territory` are
-- denormalised from customer so that a search is one index scan.
--
-- It also holds the version of the customer's dynamic fields (their ETag): every field write
-- bumps it, so a write of hot fields is one row update for both, the row lock serialises writers
-- of one customer's fields, and a write of cold fields is a HOT update of this narrow row (the
-- fillfactor leaves room for that) without touching the wide customer row.
CREATE TABLE cm_customer_hot_proj (
    customer_id            uuid PRIMARY KEY REFERENCES customer (id) ON DELETE CASCADE,
    fields_version         bigint NOT NULL DEFAULT 1,
    fields_changed_at      timestamptz,
    territory              text NOT NULL,
    -- lower(name) in byte order: serves both prefix search and sorting by name from one index,
    -- whatever the database's collation.
    name_key               text COLLATE "C" NOT NULL,
    sample_status          text,
    sample_last_event_at   timestamptz,
    roi_bucket             text,
    roi_value              numeric(12, 2),
    decision_maker_count   int,
    has_exec_alignment     boolean,
    season_start           date,
    season_end             date,
    renewal_date           date,
    exclusivity            boolean,
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CHECK (season_end >= season_start)
) WITH (fillfactor = 80);

-- Each equality filter leads an index that continues in the default sort order (name), so a
-- filtered first page is a short range scan; range filters have their own index; the seeds'
-- indexes serve the sorts by sample event, ROI value and renewal date. Filters use only
-- leakproof operators (=, <, >= on text, numbers, dates): under row-level security PostgreSQL
-- cannot use an index for any other.
CREATE INDEX hot_name_idx       ON cm_customer_hot_proj (name_key, customer_id);
CREATE INDEX hot_territory_idx  ON cm_customer_hot_proj (territory, name_key, customer_id);
CREATE INDEX hot_sample_idx     ON cm_customer_hot_proj (sample_status, name_key, customer_id);
CREATE INDEX hot_sample_recent_idx ON cm_customer_hot_proj (sample_last_event_at DESC, customer_id DESC)
    WHERE sample_last_event_at IS NOT NULL;
CREATE INDEX hot_roi_idx        ON cm_customer_hot_proj (roi_bucket, name_key, customer_id);
CREATE INDEX hot_roi_value_idx  ON cm_customer_hot_proj (roi_value DESC, customer_id DESC)
    WHERE roi_value IS NOT NULL;
CREATE INDEX hot_renewal_idx    ON cm_customer_hot_proj (renewal_date, customer_id)
    WHERE renewal_date IS NOT NULL;
CREATE INDEX hot_exclusive_idx  ON cm_customer_hot_proj (exclusivity, name_key, customer_id);
CREATE INDEX hot_dm_count_idx   ON cm_customer_hot_proj (decision_maker_count, customer_id)
    WHERE decision_maker_count IS NOT NULL;
-- Season windows: overlap is written as two date comparisons (leakproof, so usable under
-- row-level security, unlike the range operator &&), which this index serves.
CREATE INDEX hot_season_idx     ON cm_customer_hot_proj (season_end, season_start)
    WHERE season_start IS NOT NULL AND season_end IS NOT NULL;
