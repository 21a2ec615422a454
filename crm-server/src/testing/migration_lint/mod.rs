//! Lint for the sqlx migrations in `migrations/`: every schema change must be expand/contract
//! friendly.
//!
//! During a rolling deploy the old and the new binary run against the same database at the same
//! time, and migrations run while the service takes traffic. So a change is split into steps:
//!
//! 1. **Expand**: add things (tables, nullable columns, indexes built `CONCURRENTLY`, constraints
//!    added `NOT VALID` and validated later) that the old binary simply ignores.
//! 2. **Migrate**: deploy code that writes both shapes, backfill in batches, switch reads.
//! 3. **Contract**: once no running binary uses the old shape, remove it (`DROP COLUMN`,
//!    `DROP TABLE`, renames). These break any binary still using the old shape, so each needs a
//!    `-- contract: <reason>` comment directly above it saying why that is safe now
//!    (`contract-without-reason`).
//!
//! On a table that already exists (one not created earlier in the same file, so it may hold rows
//! and serve traffic) the lint rejects statements that rewrite the table or hold a long
//! `ACCESS EXCLUSIVE`/`SHARE` lock when a concurrent path exists: a non-concurrent `CREATE INDEX`
//! (`index-not-concurrent`), `ALTER COLUMN … TYPE` (`column-type-change`), `SET NOT NULL`
//! (`set-not-null`), `ADD COLUMN … NOT NULL` without a default (`not-null-without-default`),
//! `FOREIGN KEY`/`CHECK` without `NOT VALID` (`constraint-not-valid`), `UNIQUE`/`PRIMARY KEY` not
//! built `USING INDEX` (`unique-without-index`), `VACUUM FULL`, `CLUSTER` and columns whose values
//! are computed per row (`table-rewrite`), and `LOCK TABLE` (`explicit-lock`).
//!
//! `CONCURRENTLY` and `VACUUM` cannot run in a transaction block, so such a statement must be alone
//! in a file that starts with sqlx's `-- no-transaction` (`needs-no-transaction`): sqlx sends the
//! file as one query, and PostgreSQL runs a multi-statement query as one transaction. File names
//! must be `<14-digit version>_<snake_case>.sql` (`file-name`) with strictly increasing versions
//! (`version-order`), because sqlx applies files in version order and records each version once.
//!
//! A statement may opt out of a rule with a comment directly above it:
//! `-- lint: allow <rule-name> <reason>` (for example when the table is known to be tiny). The reason
//! is mandatory (`waiver-without-reason`) and the rule must exist (`unknown-waiver`). "Directly
//! above" means the block of comment-only lines ending on the line before the statement. Keywords
//! inside comments, string literals, quoted identifiers and dollar-quoted bodies never count.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs;
use std::io;
use std::path::Path;

use lexer::{LineInfo, lex};
use rules::{FileState, Violation, check_statement};

mod lexer;
mod rules;

/// One migration file: its name (not path) and contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    pub file_name: String,
    pub sql: String,
}

/// A lint rule. [`Rule::name`] is the kebab-case name used in findings and waivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    FileName,
    VersionOrder,
    IndexNotConcurrent,
    NeedsNoTransaction,
    ColumnTypeChange,
    SetNotNull,
    NotNullWithoutDefault,
    ConstraintNotValid,
    UniqueWithoutIndex,
    TableRewrite,
    ExplicitLock,
    ContractWithoutReason,
    WaiverWithoutReason,
    UnknownWaiver,
}

impl Rule {
    pub const ALL: [Rule; 14] = [
        Rule::FileName,
        Rule::VersionOrder,
        Rule::IndexNotConcurrent,
        Rule::NeedsNoTransaction,
        Rule::ColumnTypeChange,
        Rule::SetNotNull,
        Rule::NotNullWithoutDefault,
        Rule::ConstraintNotValid,
        Rule::UniqueWithoutIndex,
        Rule::TableRewrite,
        Rule::ExplicitLock,
        Rule::ContractWithoutReason,
        Rule::WaiverWithoutReason,
        Rule::UnknownWaiver,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Rule::FileName => "file-name",
            Rule::VersionOrder => "version-order",
            Rule::IndexNotConcurrent => "index-not-concurrent",
            Rule::NeedsNoTransaction => "needs-no-transaction",
            Rule::ColumnTypeChange => "column-type-change",
            Rule::SetNotNull => "set-not-null",
            Rule::NotNullWithoutDefault => "not-null-without-default",
            Rule::ConstraintNotValid => "constraint-not-valid",
            Rule::UniqueWithoutIndex => "unique-without-index",
            Rule::TableRewrite => "table-rewrite",
            Rule::ExplicitLock => "explicit-lock",
            Rule::ContractWithoutReason => "contract-without-reason",
            Rule::WaiverWithoutReason => "waiver-without-reason",
            Rule::UnknownWaiver => "unknown-waiver",
        }
    }

    pub fn from_name(name: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|rule| rule.name() == name)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One problem, located at a 1-based line of a migration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub file: String,
    pub line: usize,
    pub rule: Rule,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}: {}", self.file, self.line, self.rule, self.message)
    }
}

/// Reads every `*.sql` file in `path`, sorted by file name (which is version order for valid names).
///
/// # Errors
///
/// Fails if the directory or a file cannot be read, or a name or file is not UTF-8.
pub fn load_dir(path: &Path) -> io::Result<Vec<Migration>> {
    let mut migrations = Vec::new();
    for entry in fs::read_dir(path)? {
        let path = entry?.path();
        if path.extension().is_none_or(|extension| extension != "sql") || !fs::metadata(&path)?.is_file() {
            continue;
        }
        let Some(file_name) = path.file_name().and_then(|name| name.to_str()) else {
            let message = format!("migration file name is not UTF-8: {}", path.display());
            return Err(io::Error::new(io::ErrorKind::InvalidData, message));
        };
        let sql = fs::read_to_string(&path)
            .map_err(|error| io::Error::new(error.kind(), format!("{}: {error}", path.display())))?;
        migrations.push(Migration { file_name: file_name.to_owned(), sql });
    }
    migrations.sort_by(|a, b| a.file_name.cmp(&b.file_name));
    Ok(migrations)
}

/// Lints `migrations` in the order given (the order sqlx applies them in).
pub fn lint(migrations: &[Migration]) -> Vec<Finding> {
    let mut versions = VersionCheck::default();
    let mut findings = Vec::new();
    for migration in migrations {
        findings.extend(versions.check(&migration.file_name));
        findings.extend(lint_file(migration));
    }
    findings
}

// --- file names and versions --------------------------------------------------------------------

/// `<14-digit version>_<snake_case_description>.sql`, returning the version.
fn parse_file_name(file_name: &str) -> Option<u64> {
    let (version, rest) = file_name.split_once('_')?;
    let description = rest.strip_suffix(".sql")?;
    let digits_ok = version.len() == 14 && version.bytes().all(|b| b.is_ascii_digit());
    if !digits_ok || !is_snake_case(description) {
        return None;
    }
    version.parse().ok()
}

/// Lowercase words of letters and digits joined by single underscores, starting with a letter.
fn is_snake_case(text: &str) -> bool {
    text.starts_with(|c: char| c.is_ascii_lowercase())
        && text.split('_').all(|word| {
            !word.is_empty() && word.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

#[derive(Default)]
struct VersionCheck {
    seen: HashMap<u64, String>,
    highest: Option<u64>,
}

impl VersionCheck {
    fn check(&mut self, file_name: &str) -> Option<Finding> {
        let finding = |rule, message| Some(Finding { file: file_name.to_owned(), line: 1, rule, message });
        let Some(version) = parse_file_name(file_name) else {
            let message = "expected `<14-digit version>_<snake_case_description>.sql`".to_owned();
            return finding(Rule::FileName, message);
        };
        if let Some(other) = self.seen.get(&version) {
            return finding(Rule::VersionOrder, format!("version {version} is already used by {other}"));
        }
        self.seen.insert(version, file_name.to_owned());
        match self.highest {
            // An older version added after a newer one is skipped or fails on databases that already
            // ran the newer one, depending on sqlx's settings; either way environments diverge.
            Some(highest) if version < highest => finding(
                Rule::VersionOrder,
                format!("version {version} comes after {highest}: versions must strictly increase"),
            ),
            _ => {
                self.highest = Some(version);
                None
            }
        }
    }
}

// --- comment directives -------------------------------------------------------------------------

/// `-- contract:` and `-- lint: allow` comments found directly above a statement.
#[derive(Default)]
struct Directives {
    /// The reason of the last `-- contract:` comment (possibly empty).
    contract: Option<String>,
    waivers: Vec<Waiver>,
}

struct Waiver {
    line: usize,
    rule_name: String,
    reason: String,
}

/// The line comments of the comment-only lines directly above `line`; a blank or code line ends
/// the block, so a comment further up (or trailing the previous statement) does not count.
fn comment_block_above(lines: &[LineInfo], line: usize) -> Vec<(usize, &str)> {
    let mut block = Vec::new();
    for above in (1..line).rev() {
        let Some(info) = lines.get(above).filter(|info| info.comment && !info.code) else {
            break;
        };
        if let Some(text) = &info.line_comment {
            block.push((above, text.as_str()));
        }
    }
    block.reverse();
    block
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..])
}

fn parse_directives(block: &[(usize, &str)]) -> Directives {
    let mut directives = Directives::default();
    for &(line, text) in block {
        if let Some(reason) = strip_prefix_ignore_case(text, "contract:") {
            directives.contract = Some(reason.trim().to_owned());
        } else if let Some(rest) = strip_prefix_ignore_case(text, "lint:") {
            let Some(rest) = strip_prefix_ignore_case(rest.trim_start(), "allow") else {
                continue;
            };
            let rest = rest.trim();
            let (rule_name, reason) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            directives.waivers.push(Waiver {
                line,
                rule_name: rule_name.to_owned(),
                reason: reason.trim().to_owned(),
            });
        }
    }
    directives
}

/// Applies the statement's directives to its violations and turns the rest into findings.
fn resolve(violations: Vec<Violation>, directives: &Directives, file: &str) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut finding =
        |line, rule, message| findings.push(Finding { file: file.to_owned(), line, rule, message });

    let mut waived = HashSet::new();
    for waiver in &directives.waivers {
        let name = &waiver.rule_name;
        match Rule::from_name(name) {
            None if name.is_empty() => {
                let message = "`-- lint: allow` needs a rule name and a reason".to_owned();
                finding(waiver.line, Rule::UnknownWaiver, message);
            }
            None => {
                let message = format!("`{name}` is not a rule of this lint");
                finding(waiver.line, Rule::UnknownWaiver, message);
            }
            Some(_) if waiver.reason.is_empty() => {
                let message =
                    format!("waiving `{name}` needs a reason: `-- lint: allow {name} <why it is safe>`");
                finding(waiver.line, Rule::WaiverWithoutReason, message);
            }
            Some(rule) => {
                waived.insert(rule);
            }
        }
    }

    for mut violation in violations {
        if waived.contains(&violation.rule) {
            continue;
        }
        if violation.rule == Rule::ContractWithoutReason {
            match directives.contract.as_deref() {
                Some("") => {
                    violation.message.push_str(" (the `-- contract:` comment above it gives no reason)")
                }
                Some(_) => continue,
                None => {}
            }
        }
        finding(violation.line, violation.rule, violation.message);
    }
    findings
}

/// sqlx runs a migration outside a transaction only if its text starts with exactly this.
const NO_TRANSACTION: &str = "-- no-transaction";

fn lint_file(migration: &Migration) -> Vec<Finding> {
    let lexed = lex(&migration.sql);
    let mut file = FileState {
        created: HashSet::new(),
        no_transaction: migration.sql.starts_with(NO_TRANSACTION),
        statement_count: lexed.statements.len(),
    };
    let mut findings = Vec::new();
    for statement in &lexed.statements {
        let violations = check_statement(statement, &mut file);
        let line = statement.first().map_or(1, |token| token.line);
        let directives = parse_directives(&comment_block_above(&lexed.lines, line));
        findings.extend(resolve(violations, &directives, &migration.file_name));
    }
    findings
}

#[cfg(test)]
mod tests;
