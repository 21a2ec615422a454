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

-- The rules, as SQL text over a row's territory, owner and chain. Policies are created from this
-- text rather than calling a function per row: a SQL function whose body holds subqueries is not
-- inlined, so it would run, with its scope lookups, once per row; written into the policy, each
-- scope lookup becomes an init plan evaluated once per statement. Read differs from write in two
-- places: a rep reads unowned customers of their territories, and reads every location of a chain
-- in which they own one (writes only those of CHAIN_SHARED chains). tests/api/isolation.rs holds
-- both to an independent model.
CREATE FUNCTION crm_rule(access text, territory text, owner text, chain text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE
AS $fn$
BEGIN
    IF access NOT IN ('read', 'write') THEN
        RAISE EXCEPTION 'crm_rule: access must be read or write, not %', access;
    END IF;
    RETURN format($rule$((SELECT crm_scope_admin())
        OR %1$s = ANY ((SELECT crm_scope_list('crm.lead_territories'))::text[])
        OR %3$s = ANY ((SELECT crm_scope_list('crm.chains'))::uuid[])
        OR (%1$s = ANY ((SELECT crm_scope_list('crm.rep_territories'))::text[])
            AND (%4$s%2$s = (SELECT crm_scope_user())
                 OR %3$s = ANY ((SELECT crm_rep_chains(%5$s))::uuid[]))))$rule$,
        territory, owner, chain,
        CASE access WHEN 'read' THEN format('%s IS NULL OR ', owner) ELSE '' END,
        CASE access WHEN 'write' THEN 'true' ELSE 'false' END);
END
$fn$;

CREATE FUNCTION crm_chain(parent uuid, id uuid, is_chain boolean) RETURNS uuid LANGUAGE sql IMMUTABLE
    AS $$ SELECT coalesce(parent, CASE WHEN is_chain THEN id END) $$;

-- Policies of a table with the rules over the given columns: read for SELECT, write for INSERT
-- and UPDATE; DELETE only for admins.
CREATE PROCEDURE crm_protect(tbl regclass, territory text, owner text, chain text) LANGUAGE plpgsql
AS $$
DECLARE
    name text := (SELECT relname FROM pg_class WHERE oid = tbl);
    may_read text := crm_rule('read', territory, owner, chain);
    may_write text := crm_rule('write', territory, owner, chain);
BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
    EXECUTE format('CREATE POLICY %I ON %s FOR SELECT TO crm_app USING %s', name || '_read', tbl, may_read);
    EXECUTE format('CREATE POLICY %I ON %s FOR INSERT TO crm_app WITH CHECK %s', name || '_insert', tbl, may_write);
    EXECUTE format('CREATE POLICY %I ON %s FOR UPDATE TO crm_app USING %s WITH CHECK %s',
                   name || '_update', tbl, may_write, may_write);
    EXECUTE format('CREATE POLICY %I ON %s FOR DELETE TO crm_app USING ((SELECT crm_scope_admin()))',
                   name || '_delete', tbl);
END
$$;

-- Policies of a table whose rows belong to a customer (`customer_column`): readable with the
-- customer (through customer's own policy), writable where the customer is, as its projection row
-- (territory, owner and chain stored) says. The column is qualified with the table's name: inside
-- the subquery a bare name would resolve to the projection's own column first. Migrations of later
-- tables call this in the migration that creates them.
CREATE PROCEDURE crm_protect_customer_rows(tbl regclass, customer_column text) LANGUAGE plpgsql
AS $$
DECLARE
    name text := (SELECT relname FROM pg_class WHERE oid = tbl);
    owner_ref text := format('%I.%I', name, customer_column);
    may_write text := format('(EXISTS (SELECT 1 FROM cm_customer_hot_proj p WHERE p.customer_id = %s AND %s))',
                             owner_ref, crm_rule('write', 'p.territory', 'p.owner_subject', 'p.chain_id'));
BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
    EXECUTE format('CREATE POLICY %I ON %s FOR SELECT TO crm_app USING (EXISTS (SELECT 1 FROM customer c WHERE c.id = %s))',
                   name || '_read', tbl, owner_ref);
    EXECUTE format('CREATE POLICY %I ON %s FOR ALL TO crm_app USING %s WITH CHECK %s',
                   name || '_write', tbl, may_write, may_write);
END
$$;

CALL crm_protect('customer', 'territory', 'owner_subject', 'crm_chain(parent_account_id, id, is_chain)');
CALL crm_protect('cm_customer_hot_proj', 'territory', 'owner_subject', 'chain_id');
CALL crm_protect_customer_rows('field_values', 'customer_id');
CALL crm_protect_customer_rows('field_value_history', 'customer_id');
CALL crm_protect_customer_rows('contact_roles', 'account_id');

-- Whether the current scope may write a customer (its fields, contacts): the server asks this to
-- tell "read-only for you" (403) from "stale" (412), and contact's policy below.
DO $$
BEGIN
    EXECUTE format('CREATE FUNCTION crm_may_write_customer(customer uuid) RETURNS boolean LANGUAGE sql STABLE
                    AS $body$ SELECT EXISTS (SELECT 1 FROM cm_customer_hot_proj p WHERE p.customer_id = customer AND %s) $body$',
                   crm_rule('write', 'p.territory', 'p.owner_subject', 'p.chain_id'));
END $$;

-- A contact is visible through its roles at visible accounts, and writable through a role at a
-- writable one. A new contact has no roles yet, so inserting one is allowed; it becomes visible
-- when its first role is written, which needs write access to the account.
ALTER TABLE contact ENABLE ROW LEVEL SECURITY;
CREATE POLICY contact_read ON contact FOR SELECT TO crm_app
    USING ((SELECT crm_scope_admin()) OR EXISTS (SELECT 1 FROM contact_roles r WHERE r.contact_id = contact.id));
CREATE POLICY contact_insert ON contact FOR INSERT TO crm_app
    WITH CHECK ((SELECT crm_scope_user()) IS NOT NULL OR (SELECT crm_scope_admin()));
CREATE POLICY contact_update ON contact FOR UPDATE TO crm_app
    USING ((SELECT crm_scope_admin()) OR EXISTS (SELECT 1 FROM contact_roles r WHERE r.contact_id = contact.id
                                                    AND crm_may_write_customer(r.account_id)))
    WITH CHECK ((SELECT crm_scope_admin()) OR EXISTS (SELECT 1 FROM contact_roles r WHERE r.contact_id = contact.id
                                                         AND crm_may_write_customer(r.account_id)));

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
GRANT EXECUTE ON FUNCTION crm_scope_user(), crm_scope_admin(), crm_scope_list(text), crm_chain(uuid, uuid, boolean),
    crm_may_write_customer(uuid) TO crm_app;
-- The policy builders are for migrations (run by the owner), not for the server.
REVOKE ALL ON FUNCTION crm_rule(text, text, text, text) FROM PUBLIC;
REVOKE ALL ON PROCEDURE crm_protect(regclass, text, text, text), crm_protect_customer_rows(regclass, text) FROM PUBLIC;
