use super::*;

const FILE: &str = "20261123000001_test.sql";

fn migration(file_name: &str, sql: &str) -> Migration {
    Migration { file_name: file_name.to_owned(), sql: sql.to_owned() }
}

fn findings(sql: &str) -> Vec<Finding> {
    lint(&[migration(FILE, sql)])
}

/// The rules that fired, in order, for compact assertions.
fn rules(sql: &str) -> Vec<Rule> {
    findings(sql).iter().map(|finding| finding.rule).collect()
}

fn rules_of_files(names: &[&str]) -> Vec<Rule> {
    let migrations: Vec<Migration> = names.iter().map(|name| migration(name, "SELECT 1;")).collect();
    lint(&migrations).iter().map(|finding| finding.rule).collect()
}

// --- file names and versions ----------------------------------------------------------------

#[test]
fn a_well_named_file_passes() {
    assert_eq!(rules_of_files(&["20261123000001_event_outbox.sql"]), []);
    assert_eq!(rules_of_files(&["20261123000001_add_v2_index.sql"]), []);
}

#[test]
fn badly_named_files_are_reported() {
    for name in [
        "1_init.sql",
        "2026112300000_init.sql",
        "20261123000001-init.sql",
        "20261123000001_Init.sql",
        "20261123000001_event__outbox.sql",
        "20261123000001_event_outbox_.sql",
        "20261123000001_2fa.sql",
        "20261123000001_.sql",
        "20261123000001_init.up.sql",
        "20261123000001_init.txt",
    ] {
        assert_eq!(rules_of_files(&[name]), [Rule::FileName], "{name}");
    }
}

#[test]
fn increasing_versions_pass() {
    let names = ["20261123000001_a.sql", "20261123000002_b.sql", "20261201000000_c.sql"];
    assert_eq!(rules_of_files(&names), []);
}

#[test]
fn a_duplicate_version_is_reported() {
    let names = ["20261123000001_a.sql", "20261123000001_b.sql"];
    assert_eq!(rules_of_files(&names), [Rule::VersionOrder]);
}

#[test]
fn a_decreasing_version_is_reported() {
    let names = ["20261123000002_a.sql", "20261123000001_b.sql", "20261123000003_c.sql"];
    assert_eq!(rules_of_files(&names), [Rule::VersionOrder]);
}

// --- CREATE INDEX ---------------------------------------------------------------------------

#[test]
fn creating_an_index_on_an_existing_table_without_concurrently_is_reported() {
    assert_eq!(rules("CREATE INDEX customers_name_idx ON customers (name);"), [Rule::IndexNotConcurrent]);
    assert_eq!(
        rules("create unique index if not exists i on only public.customers (name);"),
        [Rule::IndexNotConcurrent]
    );
    assert_eq!(rules("CREATE INDEX ON customers USING gin (tags);"), [Rule::IndexNotConcurrent]);
}

#[test]
fn creating_a_table_and_indexing_it_in_the_same_file_is_fine() {
    let sql = "CREATE TABLE IF NOT EXISTS public.event_outbox (id uuid PRIMARY KEY, created_at timestamptz);\n\
               CREATE INDEX event_outbox_created_idx ON event_outbox (created_at);\n\
               CREATE UNIQUE INDEX ON \"event_outbox\" (id);";
    assert_eq!(rules(sql), []);
}

#[test]
fn a_table_created_in_an_earlier_file_counts_as_existing() {
    let migrations = [
        migration("20261123000001_a.sql", "CREATE TABLE t (id int);"),
        migration("20261123000002_b.sql", "CREATE INDEX t_idx ON t (id);"),
    ];
    let found = lint(&migrations);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].file, "20261123000002_b.sql");
    assert_eq!(found[0].rule, Rule::IndexNotConcurrent);
}

#[test]
fn quoted_table_names_are_case_sensitive() {
    let sql = "CREATE TABLE \"Orders\" (id int);\nCREATE INDEX ON orders (id);";
    assert_eq!(rules(sql), [Rule::IndexNotConcurrent]);
}

#[test]
fn a_concurrent_index_alone_in_a_no_transaction_file_is_fine() {
    let sql = "-- no-transaction\n-- The listing query filters by status.\n\
               CREATE INDEX CONCURRENTLY IF NOT EXISTS samples_status_idx ON samples (status);\n";
    assert_eq!(rules(sql), []);
}

#[test]
fn a_concurrent_index_without_no_transaction_is_reported() {
    let sql = "CREATE INDEX CONCURRENTLY samples_status_idx ON samples (status);";
    assert_eq!(rules(sql), [Rule::NeedsNoTransaction]);
}

#[test]
fn the_no_transaction_directive_must_be_the_very_start_of_the_file() {
    let sql = "\n-- no-transaction\nCREATE INDEX CONCURRENTLY i ON samples (status);";
    assert_eq!(rules(sql), [Rule::NeedsNoTransaction]);
}

#[test]
fn a_concurrent_index_must_be_alone_in_its_file() {
    let sql = "-- no-transaction\nCREATE INDEX CONCURRENTLY a ON samples (status);\n\
               CREATE INDEX CONCURRENTLY b ON samples (kind);";
    assert_eq!(rules(sql), [Rule::NeedsNoTransaction, Rule::NeedsNoTransaction]);
}

#[test]
fn drop_index_and_reindex_concurrently_also_need_no_transaction() {
    assert_eq!(rules("DROP INDEX CONCURRENTLY i;"), [Rule::NeedsNoTransaction]);
    assert_eq!(rules("-- no-transaction\nDROP INDEX CONCURRENTLY i;"), []);
    assert_eq!(rules("-- no-transaction\nREINDEX INDEX CONCURRENTLY i;"), []);
    assert_eq!(rules("DROP INDEX i;"), []);
}

#[test]
fn reindex_without_concurrently_is_reported() {
    assert_eq!(rules("REINDEX TABLE customers;"), [Rule::IndexNotConcurrent]);
}

// --- ALTER COLUMN ---------------------------------------------------------------------------

#[test]
fn changing_a_column_type_on_an_existing_table_is_reported() {
    assert_eq!(rules("ALTER TABLE customers ALTER COLUMN name TYPE varchar(200);"), [Rule::ColumnTypeChange]);
    assert_eq!(
        rules("alter table only customers alter name set data type text using name::text;"),
        [Rule::ColumnTypeChange]
    );
}

#[test]
fn changing_a_column_type_on_a_new_table_is_fine() {
    let sql = "CREATE TABLE t (n int);\nALTER TABLE t ALTER COLUMN n TYPE bigint;";
    assert_eq!(rules(sql), []);
}

#[test]
fn other_column_alterations_are_fine() {
    let sql = "ALTER TABLE customers ALTER COLUMN name SET DEFAULT '', ALTER COLUMN note DROP NOT NULL, \
               ALTER COLUMN type SET STATISTICS 100;";
    assert_eq!(rules(sql), []);
}

#[test]
fn set_not_null_on_an_existing_table_is_reported() {
    assert_eq!(rules("ALTER TABLE customers ALTER COLUMN email SET NOT NULL;"), [Rule::SetNotNull]);
}

#[test]
fn set_not_null_on_a_new_table_is_fine() {
    assert_eq!(rules("CREATE TABLE t (n int);\nALTER TABLE t ALTER n SET NOT NULL;"), []);
}

// --- ADD COLUMN -----------------------------------------------------------------------------

#[test]
fn adding_a_not_null_column_without_default_is_reported() {
    assert_eq!(rules("ALTER TABLE customers ADD COLUMN tier text NOT NULL;"), [Rule::NotNullWithoutDefault]);
    assert_eq!(
        rules("ALTER TABLE customers ADD IF NOT EXISTS tier text NOT NULL;"),
        [Rule::NotNullWithoutDefault]
    );
}

#[test]
fn adding_a_not_null_column_with_a_default_is_fine() {
    assert_eq!(rules("ALTER TABLE customers ADD COLUMN tier text NOT NULL DEFAULT 'basic';"), []);
    assert_eq!(rules("ALTER TABLE customers ADD COLUMN seen_at timestamptz NOT NULL DEFAULT now();"), []);
}

#[test]
fn adding_a_nullable_column_is_fine() {
    assert_eq!(rules("ALTER TABLE customers ADD COLUMN note text, ADD COLUMN score int NULL;"), []);
}

#[test]
fn adding_a_column_with_a_volatile_default_is_a_table_rewrite() {
    assert_eq!(
        rules("ALTER TABLE customers ADD COLUMN token uuid NOT NULL DEFAULT gen_random_uuid();"),
        [Rule::TableRewrite]
    );
    assert_eq!(rules("ALTER TABLE customers ADD COLUMN n bigserial;"), [Rule::TableRewrite]);
    assert_eq!(
        rules("ALTER TABLE customers ADD COLUMN n bigint GENERATED ALWAYS AS IDENTITY;"),
        [Rule::TableRewrite]
    );
    assert_eq!(
        rules("ALTER TABLE t2 ADD COLUMN total int GENERATED ALWAYS AS (a + b) STORED;"),
        [Rule::TableRewrite]
    );
}

#[test]
fn several_actions_are_each_checked_on_their_own_line() {
    let sql =
        "ALTER TABLE customers\n  ADD COLUMN a int,\n  ADD COLUMN b int NOT NULL,\n  ALTER c TYPE text;";
    let found = findings(sql);
    let lines: Vec<(usize, Rule)> = found.iter().map(|f| (f.line, f.rule)).collect();
    assert_eq!(lines, [(3, Rule::NotNullWithoutDefault), (4, Rule::ColumnTypeChange)]);
}

// --- constraints ----------------------------------------------------------------------------

#[test]
fn adding_a_foreign_key_without_not_valid_is_reported() {
    let sql = "ALTER TABLE samples ADD CONSTRAINT samples_customer_fk FOREIGN KEY (customer_id) \
               REFERENCES customers (id);";
    assert_eq!(rules(sql), [Rule::ConstraintNotValid]);
    assert_eq!(
        rules("ALTER TABLE samples ADD FOREIGN KEY (c) REFERENCES customers;"),
        [Rule::ConstraintNotValid]
    );
}

#[test]
fn adding_a_check_without_not_valid_is_reported() {
    assert_eq!(
        rules("ALTER TABLE samples ADD CONSTRAINT qty_positive CHECK (qty > 0);"),
        [Rule::ConstraintNotValid]
    );
    assert_eq!(rules("ALTER TABLE samples ADD CHECK (qty > 0);"), [Rule::ConstraintNotValid]);
}

#[test]
fn adding_constraints_not_valid_and_validating_them_is_fine() {
    let sql = "ALTER TABLE samples ADD CONSTRAINT fk FOREIGN KEY (c) REFERENCES customers NOT VALID;\n\
               ALTER TABLE samples ADD CONSTRAINT qty_positive CHECK (qty > 0) NOT VALID;\n\
               ALTER TABLE samples VALIDATE CONSTRAINT fk;";
    assert_eq!(rules(sql), []);
}

#[test]
fn adding_a_column_with_an_inline_reference_or_check_is_reported() {
    assert_eq!(
        rules("ALTER TABLE samples ADD COLUMN customer_id uuid REFERENCES customers (id);"),
        [Rule::ConstraintNotValid]
    );
    assert_eq!(rules("ALTER TABLE samples ADD COLUMN qty int CHECK (qty > 0);"), [Rule::ConstraintNotValid]);
}

#[test]
fn adding_unique_or_primary_key_without_an_index_is_reported() {
    assert_eq!(
        rules("ALTER TABLE customers ADD CONSTRAINT email_key UNIQUE (email);"),
        [Rule::UniqueWithoutIndex]
    );
    assert_eq!(rules("ALTER TABLE customers ADD PRIMARY KEY (id);"), [Rule::UniqueWithoutIndex]);
    assert_eq!(rules("ALTER TABLE customers ADD COLUMN code text UNIQUE;"), [Rule::UniqueWithoutIndex]);
}

#[test]
fn adding_unique_or_primary_key_using_an_index_is_fine() {
    assert_eq!(rules("ALTER TABLE customers ADD CONSTRAINT email_key UNIQUE USING INDEX email_idx;"), []);
    assert_eq!(rules("ALTER TABLE customers ADD PRIMARY KEY USING INDEX customers_id_idx;"), []);
}

#[test]
fn constraints_on_a_new_table_are_fine() {
    let sql = "CREATE TABLE t (id int, c int);\nALTER TABLE t ADD PRIMARY KEY (id), \
               ADD FOREIGN KEY (c) REFERENCES customers, ADD COLUMN n int NOT NULL;";
    assert_eq!(rules(sql), []);
}

// --- rewrites and locks ---------------------------------------------------------------------

#[test]
fn vacuum_full_is_reported() {
    let no_tx = |sql: &str| rules(&format!("-- no-transaction\n{sql}"));
    assert_eq!(no_tx("VACUUM FULL customers;"), [Rule::TableRewrite]);
    assert_eq!(no_tx("VACUUM (FULL, ANALYZE) customers;"), [Rule::TableRewrite]);
    assert_eq!(no_tx("vacuum full;"), [Rule::TableRewrite]);
}

#[test]
fn plain_vacuum_alone_in_a_no_transaction_file_is_fine() {
    assert_eq!(rules("-- no-transaction\nVACUUM ANALYZE customers;"), []);
}

#[test]
fn vacuum_inside_a_transaction_is_reported() {
    assert_eq!(rules("VACUUM ANALYZE customers;"), [Rule::NeedsNoTransaction]);
}

#[test]
fn cluster_is_reported() {
    assert_eq!(rules("CLUSTER customers USING customers_pkey;"), [Rule::TableRewrite]);
    assert_eq!(rules("CLUSTER;"), [Rule::TableRewrite]);
}

#[test]
fn table_rewriting_set_actions_are_reported() {
    assert_eq!(rules("ALTER TABLE customers SET LOGGED;"), [Rule::TableRewrite]);
    assert_eq!(rules("ALTER TABLE customers SET (fillfactor = 70);"), []);
}

#[test]
fn lock_table_is_reported() {
    assert_eq!(rules("LOCK TABLE customers IN ACCESS EXCLUSIVE MODE;"), [Rule::ExplicitLock]);
    assert_eq!(rules("lock customers;"), [Rule::ExplicitLock]);
}

#[test]
fn locking_a_new_table_is_fine() {
    assert_eq!(rules("CREATE TABLE t (id int);\nLOCK TABLE t;\nCLUSTER t USING t_idx;"), []);
}

#[test]
fn select_for_update_is_not_a_lock_statement() {
    assert_eq!(rules("SELECT * FROM customers FOR UPDATE;"), []);
}

// --- contract steps -------------------------------------------------------------------------

#[test]
fn contract_steps_without_a_comment_are_reported() {
    for sql in [
        "DROP TABLE legacy_notes;",
        "DROP TABLE IF EXISTS legacy_notes CASCADE;",
        "ALTER TABLE customers DROP COLUMN fax;",
        "ALTER TABLE customers DROP fax;",
        "ALTER TABLE customers RENAME COLUMN fax TO phone;",
        "ALTER TABLE customers RENAME fax TO phone;",
        "ALTER TABLE customers RENAME TO clients;",
    ] {
        assert_eq!(rules(sql), [Rule::ContractWithoutReason], "{sql}");
    }
}

#[test]
fn contract_steps_are_reported_even_on_a_new_table() {
    assert_eq!(rules("CREATE TABLE t (a int);\nALTER TABLE t DROP COLUMN a;"), [Rule::ContractWithoutReason]);
}

#[test]
fn a_contract_comment_directly_above_allows_the_step() {
    let sql =
        "-- contract: no binary reads fax since release 2026.11\nALTER TABLE customers DROP COLUMN fax;";
    assert_eq!(rules(sql), []);
}

#[test]
fn a_contract_comment_anywhere_in_the_comment_block_above_allows_the_step() {
    let sql = "SELECT 1;\n\n-- Contract: legacy_notes was replaced by activities in 2026.10\n\
               -- and nothing has written to it since.\n/* checked in production */\nDROP TABLE legacy_notes;";
    assert_eq!(rules(sql), []);
}

#[test]
fn a_contract_comment_separated_by_a_blank_line_does_not_count() {
    let sql = "-- contract: unused since 2026.10\n\nDROP TABLE legacy_notes;";
    assert_eq!(rules(sql), [Rule::ContractWithoutReason]);
}

#[test]
fn a_contract_comment_trailing_the_previous_statement_does_not_count() {
    let sql = "SELECT 1; -- contract: unused since 2026.10\nDROP TABLE legacy_notes;";
    assert_eq!(rules(sql), [Rule::ContractWithoutReason]);
}

#[test]
fn a_contract_comment_applies_only_to_the_statement_below_it() {
    let sql = "-- contract: unused since 2026.10\nDROP TABLE a;\nDROP TABLE b;";
    let found = findings(sql);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].line, 3);
}

#[test]
fn a_contract_comment_without_reason_is_reported() {
    let found = findings("-- contract:\nDROP TABLE legacy_notes;");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].rule, Rule::ContractWithoutReason);
    assert!(found[0].message.contains("gives no reason"), "{}", found[0].message);
}

#[test]
fn renaming_or_dropping_constraints_is_not_a_contract_step() {
    assert_eq!(rules("ALTER TABLE customers RENAME CONSTRAINT a TO b, DROP CONSTRAINT c;"), []);
}

// --- waivers --------------------------------------------------------------------------------

#[test]
fn a_waiver_with_a_reason_silences_its_rule() {
    let sql = "-- lint: allow index-not-concurrent settings has one row per tenant\n\
               CREATE INDEX settings_key_idx ON settings (key);";
    assert_eq!(rules(sql), []);
}

#[test]
fn a_waiver_can_sit_anywhere_in_the_comment_block() {
    let sql = "-- lint: allow set-not-null validated by samples_qty_not_null in 20261123000002\n\
               -- (see the runbook)\nALTER TABLE samples ALTER COLUMN qty SET NOT NULL;";
    assert_eq!(rules(sql), []);
}

#[test]
fn a_waiver_silences_only_the_named_rule() {
    let sql = "-- lint: allow set-not-null tiny table\nALTER TABLE samples ALTER COLUMN qty TYPE bigint;";
    assert_eq!(rules(sql), [Rule::ColumnTypeChange]);
}

#[test]
fn a_waiver_applies_only_to_the_statement_below_it() {
    let sql = "-- lint: allow explicit-lock tiny table\nLOCK TABLE a;\nLOCK TABLE b;";
    assert_eq!(rules(sql), [Rule::ExplicitLock]);
}

#[test]
fn a_waiver_without_reason_is_reported_and_does_not_waive() {
    let sql = "-- lint: allow explicit-lock\nLOCK TABLE settings;";
    let found = findings(sql);
    let lines: Vec<(usize, Rule)> = found.iter().map(|f| (f.line, f.rule)).collect();
    assert_eq!(lines, [(1, Rule::WaiverWithoutReason), (2, Rule::ExplicitLock)]);
}

#[test]
fn a_waiver_for_an_unknown_rule_is_reported() {
    let sql = "-- lint: allow lock-table tiny table\nLOCK TABLE settings;";
    assert_eq!(rules(sql), [Rule::UnknownWaiver, Rule::ExplicitLock]);
    let sql = "-- lint: allow\nLOCK TABLE settings;";
    assert_eq!(rules(sql), [Rule::UnknownWaiver, Rule::ExplicitLock]);
}

#[test]
fn a_waiver_can_stand_in_for_a_contract_comment() {
    let sql = "-- lint: allow contract-without-reason table never shipped\nDROP TABLE drafts;";
    assert_eq!(rules(sql), []);
}

// --- comments and literals ------------------------------------------------------------------

#[test]
fn keywords_inside_comments_and_strings_do_not_count() {
    let sql = "\
CREATE TABLE notes (body text DEFAULT 'DROP TABLE x; ALTER TABLE y ALTER COLUMN z TYPE int');
-- DROP TABLE customers;
/* LOCK TABLE customers; /* nested */ VACUUM FULL customers; */
INSERT INTO notes (body) VALUES ('it''s; LOCK TABLE customers'), (E'it\\'s; DROP TABLE customers');
DO $$ BEGIN EXECUTE 'DROP TABLE customers'; DROP TABLE customers; END $$;
CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $body$ DELETE FROM x; DROP TABLE y; $body$;
SELECT \"DROP TABLE\" FROM notes WHERE body = $1;
";
    assert_eq!(findings(sql), []);
}

#[test]
fn statements_after_literals_are_still_checked_on_the_right_line() {
    let sql = "INSERT INTO notes VALUES ('a;\nb');\n/* multi\nline */\nDROP TABLE notes;";
    let found = findings(sql);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].line, 5);
}

#[test]
fn unterminated_literals_and_comments_do_not_panic() {
    for sql in ["SELECT 'open", "SELECT $$ open", "/* open", "SELECT \"open", "E'\\", "$a"] {
        let _ = findings(sql);
    }
}

// --- reporting and loading ------------------------------------------------------------------

#[test]
fn a_finding_displays_as_file_line_rule_message() {
    let found = findings("SELECT 1;\nLOCK TABLE customers;");
    let shown = found[0].to_string();
    assert!(shown.starts_with("20261123000001_test.sql:2: explicit-lock: LOCK on `customers`"), "{shown}");
}

#[test]
fn every_rule_name_round_trips() {
    for rule in Rule::ALL {
        assert_eq!(Rule::from_name(rule.name()), Some(rule));
        assert!(rule.name().bytes().all(|b| b.is_ascii_lowercase() || b == b'-'));
    }
    assert_eq!(Rule::from_name("nope"), None);
}

#[test]
fn load_dir_reads_sql_files_sorted_by_name() -> io::Result<()> {
    let dir = tempfile::tempdir()?;
    fs::write(dir.path().join("20261123000002_b.sql"), "SELECT 2;")?;
    fs::write(dir.path().join("20261123000001_a.sql"), "SELECT 1;")?;
    fs::write(dir.path().join("README.md"), "not a migration")?;
    fs::create_dir(dir.path().join("old.sql"))?;

    let migrations = load_dir(dir.path())?;
    assert_eq!(
        migrations,
        [migration("20261123000001_a.sql", "SELECT 1;"), migration("20261123000002_b.sql", "SELECT 2;"),]
    );
    Ok(())
}

#[test]
fn load_dir_fails_for_a_missing_directory() {
    assert!(load_dir(Path::new("/nonexistent/migrations")).is_err());
}
