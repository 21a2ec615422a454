//! The statement rules of the migration lint: each statement is checked against what the file has
//! done so far (tables it created, whether it runs outside a transaction), producing
//! [`Violation`]s that the caller then filters through waivers and `-- contract:` comments.

use std::collections::HashSet;

use super::Rule;
use super::lexer::{
    Token, has_kw, has_sequence, is_kw, relation_name, skip_any, skip_options, skip_sequence,
    split_top_level, starts_with,
};

/// What the rules need to know about the file a statement is in.
pub(super) struct FileState {
    /// Tables created earlier in this file: nobody else can be using them yet.
    pub(super) created: HashSet<String>,
    pub(super) no_transaction: bool,
    pub(super) statement_count: usize,
}

impl FileState {
    /// `Some` description of the target if the statement acts on an existing table. A statement that
    /// names no table (`VACUUM FULL`, `CLUSTER`) acts on all of them.
    fn existing_target(&self, tokens: &[Token], index: usize) -> Option<String> {
        match relation_name(tokens, index) {
            Some((name, _)) if self.created.contains(&name) => None,
            Some((name, _)) => Some(format!("`{name}`")),
            None => Some("every table".to_owned()),
        }
    }
}

/// A rule broken by one statement, before waivers and contract comments are applied.
pub(super) struct Violation {
    pub(super) rule: Rule,
    pub(super) line: usize,
    pub(super) message: String,
}

fn violation(rule: Rule, line: usize, message: impl Into<String>) -> Violation {
    Violation { rule, line, message: message.into() }
}

fn contract_step(line: usize, what: String) -> Violation {
    let message = format!(
        "{what} is a contract step that breaks binaries still using it during a rolling deploy: \
         precede it with `-- contract: <why nothing uses it any more>`"
    );
    violation(Rule::ContractWithoutReason, line, message)
}

pub(super) fn check_statement(tokens: &[Token], file: &mut FileState) -> Vec<Violation> {
    let Some(first) = tokens.first() else {
        return Vec::new();
    };
    let line = first.line;
    let mut found = Vec::new();
    if first.is("CREATE") {
        check_create(tokens, file, &mut found);
    } else if starts_with(tokens, &["ALTER", "TABLE"]) {
        check_alter_table(tokens, file, &mut found);
    } else if starts_with(tokens, &["DROP", "TABLE"]) {
        found.push(contract_step(line, "DROP TABLE".to_owned()));
    } else if starts_with(tokens, &["DROP", "INDEX", "CONCURRENTLY"]) {
        found.extend(check_outside_transaction(file, line, "DROP INDEX CONCURRENTLY"));
    } else if first.is("REINDEX") {
        check_reindex(tokens, file, &mut found);
    } else if first.is("VACUUM") {
        check_vacuum(tokens, file, &mut found);
    } else if first.is("CLUSTER") {
        let index = skip_any(tokens, skip_options(tokens, 1), &["VERBOSE"]);
        if let Some(target) = file.existing_target(tokens, index) {
            let message = format!("CLUSTER rewrites {target} under an ACCESS EXCLUSIVE lock");
            found.push(violation(Rule::TableRewrite, line, message));
        }
    } else if first.is("LOCK") {
        let index = skip_any(tokens, 1, &["TABLE", "ONLY"]);
        if let Some(target) = file.existing_target(tokens, index) {
            let message = format!(
                "LOCK on {target} blocks traffic for the rest of the migration and queues behind running queries"
            );
            found.push(violation(Rule::ExplicitLock, line, message));
        }
    }
    found
}

/// `CONCURRENTLY` and `VACUUM` refuse to run in a transaction block. sqlx wraps a migration in a transaction
/// unless the file starts with `-- no-transaction`, and even then sends the whole file as one
/// query, which PostgreSQL runs as one implicit transaction when it holds several statements.
fn check_outside_transaction(file: &FileState, line: usize, what: &str) -> Option<Violation> {
    let message = if !file.no_transaction {
        format!("{what} cannot run in a transaction: start the file with a `-- no-transaction` line")
    } else if file.statement_count > 1 {
        format!(
            "{what} must be the only statement in its file: PostgreSQL runs a multi-statement query \
             as one transaction"
        )
    } else {
        return None;
    };
    Some(violation(Rule::NeedsNoTransaction, line, message))
}

fn check_vacuum(tokens: &[Token], file: &FileState, found: &mut Vec<Violation>) {
    let line = tokens.first().map_or(1, |token| token.line);
    found.extend(check_outside_transaction(file, line, "VACUUM"));
    // VACUUM [(options)] [FULL] [FREEZE] [VERBOSE] [ANALYZE] [table]
    let index = skip_any(tokens, skip_options(tokens, 1), &["FULL", "FREEZE", "VERBOSE", "ANALYZE"]);
    if !has_kw(&tokens[..index], "FULL") {
        return;
    }
    if let Some(target) = file.existing_target(tokens, index) {
        let message = format!("VACUUM FULL rewrites {target} under an ACCESS EXCLUSIVE lock");
        found.push(violation(Rule::TableRewrite, line, message));
    }
}

fn check_create(tokens: &[Token], file: &mut FileState, found: &mut Vec<Violation>) {
    let modifiers = ["OR", "REPLACE", "GLOBAL", "LOCAL", "TEMP", "TEMPORARY", "UNLOGGED", "UNIQUE"];
    let index = skip_any(tokens, 1, &modifiers);
    if is_kw(tokens, index, "TABLE") {
        let name_at = skip_sequence(tokens, index + 1, &["IF", "NOT", "EXISTS"]);
        if let Some((name, _)) = relation_name(tokens, name_at) {
            file.created.insert(name);
        }
    } else if is_kw(tokens, index, "INDEX") {
        check_create_index(tokens, index + 1, file, found);
    }
}

fn check_create_index(tokens: &[Token], after_index: usize, file: &FileState, found: &mut Vec<Violation>) {
    let line = tokens.first().map_or(1, |token| token.line);
    if is_kw(tokens, after_index, "CONCURRENTLY") {
        found.extend(check_outside_transaction(file, line, "CREATE INDEX CONCURRENTLY"));
        return;
    }
    let Some(on) = tokens.iter().position(|token| token.is("ON")) else {
        return;
    };
    if let Some(target) = file.existing_target(tokens, skip_any(tokens, on + 1, &["ONLY"])) {
        let message = format!(
            "CREATE INDEX on existing table {target} blocks writes while it builds: use CREATE INDEX \
             CONCURRENTLY, alone in a `-- no-transaction` migration"
        );
        found.push(violation(Rule::IndexNotConcurrent, line, message));
    }
}

fn check_reindex(tokens: &[Token], file: &FileState, found: &mut Vec<Violation>) {
    let line = tokens.first().map_or(1, |token| token.line);
    if has_kw(tokens, "CONCURRENTLY") {
        found.extend(check_outside_transaction(file, line, "REINDEX CONCURRENTLY"));
    } else {
        let message = "REINDEX blocks writes while it rebuilds: use REINDEX … CONCURRENTLY";
        found.push(violation(Rule::IndexNotConcurrent, line, message));
    }
}

fn check_alter_table(tokens: &[Token], file: &FileState, found: &mut Vec<Violation>) {
    let index = skip_any(tokens, skip_sequence(tokens, 2, &["IF", "EXISTS"]), &["ONLY"]);
    let Some((table, mut next)) = relation_name(tokens, index) else {
        return;
    };
    if tokens.get(next).is_some_and(|token| token.is_symbol('*')) {
        next += 1;
    }
    let existing = !file.created.contains(&table);
    for action in split_top_level(tokens.get(next..).unwrap_or_default(), ',') {
        check_alter_action(action, &table, existing, found);
    }
}

/// One comma-separated action of an `ALTER TABLE` on `table`.
fn check_alter_action(action: &[Token], table: &str, existing: bool, found: &mut Vec<Violation>) {
    let line = action.first().map_or(1, |token| token.line);
    // Contract steps break old binaries whether or not the table is new.
    if is_kw(action, 0, "RENAME") {
        if is_kw(action, 1, "TO") {
            found.push(contract_step(line, format!("renaming table `{table}`")));
        } else if !is_kw(action, 1, "CONSTRAINT") {
            found.push(contract_step(line, format!("renaming a column of `{table}`")));
        }
        return;
    }
    if is_kw(action, 0, "DROP") {
        if !is_kw(action, 1, "CONSTRAINT") {
            found.push(contract_step(line, format!("dropping a column of `{table}`")));
        }
        return;
    }
    // Locks and rewrites only matter on a table that may hold rows and serve traffic.
    if !existing {
        return;
    }
    if is_kw(action, 0, "ALTER") {
        check_alter_column(action, table, line, found);
    } else if is_kw(action, 0, "ADD") {
        check_add(action, table, line, found);
    } else if ["TABLESPACE", "LOGGED", "UNLOGGED", "ACCESS"].iter().any(|k| starts_with(action, &["SET", k]))
    {
        let message = format!("this SET rewrites `{table}` under an ACCESS EXCLUSIVE lock");
        found.push(violation(Rule::TableRewrite, line, message));
    }
}

fn check_alter_column(action: &[Token], table: &str, line: usize, found: &mut Vec<Violation>) {
    // ALTER [COLUMN] name <sub-action>
    let after_name = skip_any(action, 1, &["COLUMN"]) + 1;
    let rest = action.get(after_name..).unwrap_or_default();
    if starts_with(rest, &["TYPE"]) || starts_with(rest, &["SET", "DATA", "TYPE"]) {
        let message = format!(
            "changing a column type on `{table}` rewrites it under an ACCESS EXCLUSIVE lock and breaks \
             binaries using the old type: add a new column, backfill, switch, then drop the old one"
        );
        found.push(violation(Rule::ColumnTypeChange, line, message));
    } else if starts_with(rest, &["SET", "NOT", "NULL"]) {
        let message = format!(
            "SET NOT NULL scans `{table}` under an ACCESS EXCLUSIVE lock: add a CHECK (… IS NOT NULL) \
             NOT VALID constraint and VALIDATE it first, then waive this rule"
        );
        found.push(violation(Rule::SetNotNull, line, message));
    }
}

fn check_add(action: &[Token], table: &str, line: usize, found: &mut Vec<Violation>) {
    // ADD [CONSTRAINT name] FOREIGN KEY | CHECK | UNIQUE | PRIMARY KEY | EXCLUDE …, or a column.
    let named = is_kw(action, 1, "CONSTRAINT");
    let kind_at = if named { 3 } else { 1 };
    if is_kw(action, kind_at, "FOREIGN") || is_kw(action, kind_at, "CHECK") {
        if !has_sequence(action, &["NOT", "VALID"]) {
            let message = format!(
                "adding a FOREIGN KEY or CHECK constraint validates every row of `{table}` under lock: \
                 add it NOT VALID, then VALIDATE CONSTRAINT in a later migration"
            );
            found.push(violation(Rule::ConstraintNotValid, line, message));
        }
    } else if is_kw(action, kind_at, "UNIQUE") || is_kw(action, kind_at, "PRIMARY") {
        if !has_sequence(action, &["USING", "INDEX"]) {
            found.push(unique_without_index(table, line));
        }
    } else if !named {
        check_add_column(action, table, line, found);
    }
}

fn unique_without_index(table: &str, line: usize) -> Violation {
    let message = format!(
        "UNIQUE/PRIMARY KEY builds its index on `{table}` under an ACCESS EXCLUSIVE lock: CREATE UNIQUE \
         INDEX CONCURRENTLY first, then ADD CONSTRAINT … USING INDEX"
    );
    violation(Rule::UniqueWithoutIndex, line, message)
}

/// Defaults PostgreSQL must evaluate once per existing row, which forces a rewrite.
const VOLATILE_DEFAULTS: [&str; 9] = [
    "GEN_RANDOM_UUID",
    "UUID_GENERATE_V1",
    "UUID_GENERATE_V4",
    "UUIDV4",
    "UUIDV7",
    "RANDOM",
    "CLOCK_TIMESTAMP",
    "TIMEOFDAY",
    "NEXTVAL",
];

const SERIAL_TYPES: [&str; 6] = ["SERIAL", "BIGSERIAL", "SMALLSERIAL", "SERIAL2", "SERIAL4", "SERIAL8"];

fn check_add_column(action: &[Token], table: &str, line: usize, found: &mut Vec<Violation>) {
    // ADD [COLUMN] [IF NOT EXISTS] name type constraints…
    let name_at = skip_sequence(action, skip_any(action, 1, &["COLUMN"]), &["IF", "NOT", "EXISTS"]);
    let definition = action.get(name_at + 1..).unwrap_or_default();
    let default_at = definition.iter().position(|token| token.is("DEFAULT"));

    if has_kw(definition, "UNIQUE") || has_sequence(definition, &["PRIMARY", "KEY"]) {
        found.push(unique_without_index(table, line));
    }
    // Column constraints cannot be NOT VALID, so they are checked against every row under lock.
    if has_kw(definition, "REFERENCES") || has_kw(definition, "CHECK") {
        let message = format!(
            "an inline REFERENCES or CHECK validates every row of `{table}` under lock: add the column \
             plain, then ADD CONSTRAINT … NOT VALID and VALIDATE it later"
        );
        found.push(violation(Rule::ConstraintNotValid, line, message));
    }
    let volatile_default = default_at
        .is_some_and(|at| definition[at..].iter().any(|token| VOLATILE_DEFAULTS.iter().any(|f| token.is(f))));
    let fills_rows = volatile_default
        || SERIAL_TYPES.iter().any(|serial| is_kw(definition, 0, serial))
        || has_kw(definition, "IDENTITY")
        || (has_kw(definition, "GENERATED") && has_kw(definition, "STORED"));
    if fills_rows {
        let message = format!(
            "this column needs a value computed per row, which rewrites `{table}` under an ACCESS \
             EXCLUSIVE lock: add it nullable, backfill in batches, then set the default"
        );
        found.push(violation(Rule::TableRewrite, line, message));
    } else if has_sequence(definition, &["NOT", "NULL"]) && default_at.is_none() {
        let message = format!(
            "a NOT NULL column without DEFAULT fails as soon as `{table}` has rows: give it a DEFAULT, or \
             add it nullable, backfill, and enforce NOT NULL later"
        );
        found.push(violation(Rule::NotNullWithoutDefault, line, message));
    }
}
