-- Territory isolation: row-level security on every table the API reads or writes.
--
-- The server connects as a login role that is a member of `crm_app` and owns nothing, so the
-- policies below always apply to it (the server checks this at start and refuses to run as an
-- owner, a superuser or a role with BYPASSRLS). Owners (migrations, `crm-server projection ...`,
-- `crm-server retention ...`) are not subject to them. Every request runs in a transaction that
-- first sets the caller's scope (crm_server::db::scope):
--
--   crm.user             the token's subject
--   crm.admin            'on' for admins (and the server's own background work)
--   crm.lead_territories territories of a team lead: read and write everything in them
--   crm.rep_territories  territories of a sales rep: see below
--   crm.chains           chains of a chain manager: read and write the chain and all its locations
--
-- A sales rep, in their territories, reads customers nobody owns, customers they own and every
-- location of a chain in which they own one (its siblings); writes customers they own, and every
-- location of a chain whose coverage policy is CHAIN_SHARED and in which they own one. Without a
-- scope nothing is visible.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'crm_app') THEN
        CREATE ROLE crm_app NOLOGIN;
    END IF;
END $$;

-- Expand: who owns a customer, and how a chain is covered. Nullable or with a constant default,
-- so no rewrite; the checks are added NOT VALID and validated without blocking writers.
ALTER TABLE customer ADD COLUMN owner_subject text;
ALTER TABLE customer ADD COLUMN coverage_policy text NOT NULL DEFAULT 'OWN';
ALTER TABLE customer ADD CONSTRAINT customer_owner_subject_check
    CHECK (length(owner_subject) BETWEEN 1 AND 255) NOT VALID;
ALTER TABLE customer ADD CONSTRAINT customer_coverage_policy_check
    CHECK (coverage_policy IN ('OWN', 'CHAIN_SHARED')) NOT VALID;
ALTER TABLE customer VALIDATE CONSTRAINT customer_owner_subject_check;
ALTER TABLE customer VALIDATE CONSTRAINT customer_coverage_policy_check;
ALTER TABLE cm_customer_hot_proj ADD COLUMN owner_subject text;
ALTER TABLE cm_customer_hot_proj ADD COLUMN chain_id uuid;
-- Events carry the territory they belong to, for the event feeds' access rules.
ALTER TABLE event_outbox ADD COLUMN territory text;

-- The existing rows have no owner and are their own chain when they are chains: fill the new
-- projection column (a small table at this point; later backfills of this kind go in batches).
UPDATE cm_customer_hot_proj p
   SET chain_id = coalesce(c.parent_account_id, CASE WHEN c.is_chain THEN c.id END)
  FROM customer c
 WHERE c.id = p.customer_id AND (c.parent_account_id IS NOT NULL OR c.is_chain);

-- The scope of the current transaction.
CREATE FUNCTION crm_scope_user() RETURNS text LANGUAGE sql STABLE
    AS $$ SELECT nullif(current_setting('crm.user', true), '') $$;
CREATE FUNCTION crm_scope_admin() RETURNS boolean LANGUAGE sql STABLE
    AS $$ SELECT coalesce(nullif(current_setting('crm.admin', true), ''), 'off')::boolean $$;
CREATE FUNCTION crm_scope_list(setting text) RETURNS text[] LANGUAGE sql STABLE
    AS $$ SELECT coalesce(nullif(current_setting(setting, true), ''), '{}')::text[] $$;

-- The chains in which the current user owns a customer (optionally only CHAIN_SHARED ones). A
-- security definer function, so it can read customer without recursing into customer's policy;
-- it reads only rows of the current user.
CREATE FUNCTION crm_rep_chains(shared_only boolean) RETURNS uuid[] LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public
AS $$
    SELECT coalesce(array_agg(DISTINCT chain.id), '{}')
      FROM customer own
      JOIN customer chain ON chain.id = coalesce(own.parent_account_id, CASE WHEN own.is_chain THEN own.id END)
     WHERE own.owner_subject = crm_scope_user()
       AND own.territory = ANY (crm_scope_list('crm.rep_territories'))
       AND (NOT shared_only OR chain.coverage_policy = 'CHAIN_SHARED')
$$;
REVOKE ALL ON FUNCTION crm_rep_chains(boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_rep_chains(boolean) TO crm_app;

-- The rules, over a customer's territory, owner and chain. The scope functions sit in scalar
-- subqueries so they are evaluated once per statement, not once per row.
CREATE FUNCTION crm_may_read(territory text, owner text, chain uuid) RETURNS boolean LANGUAGE sql STABLE
AS $$
    SELECT (SELECT crm_scope_admin())
        OR territory = ANY ((SELECT crm_scope_list('crm.lead_territories'))::text[])
        OR chain = ANY ((SELECT crm_scope_list('crm.chains'))::uuid[])
        OR (territory = ANY ((SELECT crm_scope_list('crm.rep_territories'))::text[])
            AND (owner IS NULL OR owner = (SELECT crm_scope_user()) OR chain = ANY ((SELECT crm_rep_chains(false))::uuid[])))
$$;

CREATE FUNCTION crm_may_write(territory text, owner text, chain uuid) RETURNS boolean LANGUAGE sql STABLE
AS $$
    SELECT (SELECT crm_scope_admin())
        OR territory = ANY ((SELECT crm_scope_list('crm.lead_territories'))::text[])
        OR chain = ANY ((SELECT crm_scope_list('crm.chains'))::uuid[])
        OR (territory = ANY ((SELECT crm_scope_list('crm.rep_territories'))::text[])
            AND (owner = (SELECT crm_scope_user()) OR chain = ANY ((SELECT crm_rep_chains(true))::uuid[])))
$$;

CREATE FUNCTION crm_chain(parent uuid, id uuid, is_chain boolean) RETURNS uuid LANGUAGE sql IMMUTABLE
    AS $$ SELECT coalesce(parent, CASE WHEN is_chain THEN id END) $$;

ALTER TABLE customer ENABLE ROW LEVEL SECURITY;
CREATE POLICY customer_read ON customer FOR SELECT TO crm_app
    USING (crm_may_read(territory, owner_subject, crm_chain(parent_account_id, id, is_chain)));
CREATE POLICY customer_insert ON customer FOR INSERT TO crm_app
    WITH CHECK (crm_may_write(territory, owner_subject, crm_chain(parent_account_id, id, is_chain)));
CREATE POLICY customer_update ON customer FOR UPDATE TO crm_app
    USING (crm_may_write(territory, owner_subject, crm_chain(parent_account_id, id, is_chain)))
    WITH CHECK (crm_may_write(territory, owner_subject, crm_chain(parent_account_id, id, is_chain)));
CREATE POLICY customer_delete ON customer FOR DELETE TO crm_app
    USING (crm_scope_admin());

ALTER TABLE cm_customer_hot_proj ENABLE ROW LEVEL SECURITY;
CREATE POLICY projection_read ON cm_customer_hot_proj FOR SELECT TO crm_app
    USING (crm_may_read(territory, owner_subject, chain_id));
CREATE POLICY projection_insert ON cm_customer_hot_proj FOR INSERT TO crm_app
    WITH CHECK (crm_may_write(territory, owner_subject, chain_id));
CREATE POLICY projection_update ON cm_customer_hot_proj FOR UPDATE TO crm_app
    USING (crm_may_write(territory, owner_subject, chain_id))
    WITH CHECK (crm_may_write(territory, owner_subject, chain_id));

-- Rows that belong to a customer follow it: readable with the customer, writable with it.
CREATE FUNCTION crm_may_write_customer(customer uuid) RETURNS boolean LANGUAGE sql STABLE
AS $$
    SELECT EXISTS (SELECT 1 FROM customer c WHERE c.id = customer
                      AND crm_may_write(c.territory, c.owner_subject, crm_chain(c.parent_account_id, c.id, c.is_chain)))
$$;

ALTER TABLE field_values ENABLE ROW LEVEL SECURITY;
CREATE POLICY field_values_read ON field_values FOR SELECT TO crm_app
    USING (EXISTS (SELECT 1 FROM customer c WHERE c.id = customer_id));
CREATE POLICY field_values_write ON field_values FOR ALL TO crm_app
    USING (crm_may_write_customer(customer_id)) WITH CHECK (crm_may_write_customer(customer_id));

ALTER TABLE field_value_history ENABLE ROW LEVEL SECURITY;
CREATE POLICY field_history_read ON field_value_history FOR SELECT TO crm_app
    USING (EXISTS (SELECT 1 FROM customer c WHERE c.id = customer_id));
CREATE POLICY field_history_insert ON field_value_history FOR INSERT TO crm_app
    WITH CHECK (crm_may_write_customer(customer_id));

ALTER TABLE contact_roles ENABLE ROW LEVEL SECURITY;
CREATE POLICY contact_roles_read ON contact_roles FOR SELECT TO crm_app
    USING (EXISTS (SELECT 1 FROM customer c WHERE c.id = account_id));
CREATE POLICY contact_roles_write ON contact_roles FOR ALL TO crm_app
    USING (crm_may_write_customer(account_id)) WITH CHECK (crm_may_write_customer(account_id));

-- A contact is visible through its roles at visible accounts. A new contact has no roles yet,
-- so inserting one is allowed; it becomes visible when its first role is written, which needs
-- write access to the account.
CREATE FUNCTION crm_may_write_contact(contact uuid) RETURNS boolean LANGUAGE sql STABLE
AS $$
    SELECT EXISTS (SELECT 1 FROM contact_roles r WHERE r.contact_id = contact AND crm_may_write_customer(r.account_id))
$$;

ALTER TABLE contact ENABLE ROW LEVEL SECURITY;
CREATE POLICY contact_read ON contact FOR SELECT TO crm_app
    USING ((SELECT crm_scope_admin()) OR EXISTS (SELECT 1 FROM contact_roles r WHERE r.contact_id = id));
CREATE POLICY contact_insert ON contact FOR INSERT TO crm_app
    WITH CHECK ((SELECT crm_scope_user()) IS NOT NULL OR (SELECT crm_scope_admin()));
CREATE POLICY contact_update ON contact FOR UPDATE TO crm_app
    USING ((SELECT crm_scope_admin()) OR crm_may_write_contact(id))
    WITH CHECK ((SELECT crm_scope_admin()) OR crm_may_write_contact(id));

-- The outbox: anyone in scope may add the events of their writes and read back those of their
-- own transaction (INSERT ... RETURNING needs that); reading others is for admins until the
-- event feeds bring their own rules.
ALTER TABLE event_outbox ENABLE ROW LEVEL SECURITY;
CREATE POLICY outbox_insert ON event_outbox FOR INSERT TO crm_app
    WITH CHECK ((SELECT crm_scope_user()) IS NOT NULL OR (SELECT crm_scope_admin()));
CREATE POLICY outbox_read ON event_outbox FOR SELECT TO crm_app
    USING ((SELECT crm_scope_admin()) OR tx_id = pg_current_xact_id());

GRANT SELECT, INSERT, UPDATE ON customer, contact, cm_customer_hot_proj TO crm_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON contact_roles, field_values TO crm_app;
GRANT SELECT, INSERT ON field_value_history, event_outbox TO crm_app;
GRANT DELETE ON customer TO crm_app;
GRANT SELECT ON field_catalog, _sqlx_migrations TO crm_app;
GRANT EXECUTE ON FUNCTION crm_scope_user(), crm_scope_admin(), crm_scope_list(text), crm_may_read(text, text, uuid),
    crm_may_write(text, text, uuid), crm_chain(uuid, uuid, boolean), crm_may_write_customer(uuid),
    crm_may_write_contact(uuid) TO crm_app;
