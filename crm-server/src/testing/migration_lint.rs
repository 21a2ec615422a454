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
        migrations.push(Migration {
            file_name: file_name.to_owned(),
            sql,
        });
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
        let finding = |rule, message| {
            Some(Finding {
                file: file_name.to_owned(),
                line: 1,
                rule,
                message,
            })
        };
        let Some(version) = parse_file_name(file_name) else {
            let message = "expected `<14-digit version>_<snake_case_description>.sql`".to_owned();
            return finding(Rule::FileName, message);
        };
        if let Some(other) = self.seen.get(&version) {
            return finding(
                Rule::VersionOrder,
                format!("version {version} is already used by {other}"),
            );
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

// --- lexing -------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Word,
    /// A `"quoted identifier"`; `text` holds its contents.
    Quoted,
    /// A string literal or dollar-quoted body; `text` is empty because contents never matter.
    Literal,
    Symbol,
}

#[derive(Debug, Clone)]
struct Token {
    kind: Kind,
    text: String,
    line: usize,
}

impl Token {
    fn is(&self, keyword: &str) -> bool {
        self.kind == Kind::Word && self.text.eq_ignore_ascii_case(keyword)
    }

    fn is_symbol(&self, symbol: char) -> bool {
        self.kind == Kind::Symbol && self.text.starts_with(symbol)
    }
}

/// What a source line holds, to find the comment block directly above a statement.
#[derive(Debug, Default)]
struct LineInfo {
    code: bool,
    comment: bool,
    /// The text after `--`, if the line has a line comment.
    line_comment: Option<String>,
}

struct Lexed {
    statements: Vec<Vec<Token>>,
    /// Indexed by 1-based line number; index 0 is unused.
    lines: Vec<LineInfo>,
}

#[derive(Clone, Copy)]
enum Mark {
    Blank,
    Code,
    Comment,
}

struct Lexer {
    chars: Vec<char>,
    pos: usize,
    line: usize,
    lines: Vec<LineInfo>,
    statements: Vec<Vec<Token>>,
    current: Vec<Token>,
}

/// Splits SQL into statements of tokens, skipping comments and the contents of literals, and
/// splitting on `;` only outside them.
fn lex(sql: &str) -> Lexed {
    let mut lexer = Lexer {
        chars: sql.chars().collect(),
        pos: 0,
        line: 1,
        lines: Vec::new(),
        statements: Vec::new(),
        current: Vec::new(),
    };
    while let Some(c) = lexer.peek(0) {
        match (c, lexer.peek(1)) {
            ('-', Some('-')) => lexer.line_comment(),
            ('/', Some('*')) => lexer.block_comment(),
            ('\'', _) => lexer.string(false),
            ('e' | 'E', Some('\'')) => {
                lexer.bump(Mark::Code);
                lexer.string(true);
            }
            ('"', _) => lexer.quoted_identifier(),
            ('$', _) if lexer.dollar_tag().is_some() => lexer.dollar_quoted(),
            (';', _) => {
                lexer.bump(Mark::Code);
                lexer.end_statement();
            }
            (c, _) if c.is_whitespace() => {
                lexer.bump(Mark::Blank);
            }
            (c, _) if c.is_alphanumeric() || c == '_' => lexer.word(),
            _ => lexer.symbol(),
        }
    }
    lexer.end_statement();
    Lexed {
        statements: lexer.statements,
        lines: lexer.lines,
    }
}

impl Lexer {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos + ahead).copied()
    }

    fn line_info(&mut self) -> &mut LineInfo {
        if self.lines.len() <= self.line {
            self.lines.resize_with(self.line + 1, LineInfo::default);
        }
        &mut self.lines[self.line]
    }

    /// Consumes one character, recording what the current line contains.
    fn bump(&mut self, mark: Mark) -> Option<char> {
        let c = self.peek(0)?;
        let info = self.line_info();
        match mark {
            Mark::Blank => {}
            Mark::Code => info.code = true,
            Mark::Comment => info.comment = true,
        }
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn push(&mut self, kind: Kind, text: String, line: usize) {
        self.current.push(Token { kind, text, line });
    }

    fn end_statement(&mut self) {
        if !self.current.is_empty() {
            self.statements.push(std::mem::take(&mut self.current));
        }
    }

    fn line_comment(&mut self) {
        self.bump(Mark::Comment);
        self.bump(Mark::Comment);
        let mut text = String::new();
        while let Some(c) = self.peek(0).filter(|&c| c != '\n') {
            self.bump(Mark::Comment);
            text.push(c);
        }
        self.line_info().line_comment = Some(text.trim().to_owned());
    }

    /// PostgreSQL block comments nest.
    fn block_comment(&mut self) {
        let mut depth = 0usize;
        loop {
            match (self.peek(0), self.peek(1)) {
                (Some('/'), Some('*')) => depth += 1,
                (Some('*'), Some('/')) => depth = depth.saturating_sub(1),
                (Some(_), _) => {
                    self.bump(Mark::Comment);
                    continue;
                }
                (None, _) => return,
            }
            self.bump(Mark::Comment);
            self.bump(Mark::Comment);
            if depth == 0 {
                return;
            }
        }
    }

    /// `'…'` with `''` as an escaped quote; `E'…'` also allows backslash escapes.
    fn string(&mut self, backslash_escapes: bool) {
        let line = self.line;
        self.bump(Mark::Code);
        while let Some(c) = self.bump(Mark::Code) {
            match c {
                '\\' if backslash_escapes => {
                    self.bump(Mark::Code);
                }
                '\'' if self.peek(0) == Some('\'') => {
                    self.bump(Mark::Code);
                }
                '\'' => break,
                _ => {}
            }
        }
        self.push(Kind::Literal, String::new(), line);
    }

    fn quoted_identifier(&mut self) {
        let line = self.line;
        self.bump(Mark::Code);
        let mut text = String::new();
        while let Some(c) = self.bump(Mark::Code) {
            if c == '"' {
                if self.peek(0) != Some('"') {
                    break;
                }
                self.bump(Mark::Code);
            }
            text.push(c);
        }
        self.push(Kind::Quoted, text, line);
    }

    /// The opening `$tag$` at the current position, if there is one. A tag is an identifier that
    /// does not start with a digit, which keeps `$1` parameters out.
    fn dollar_tag(&self) -> Option<Vec<char>> {
        let mut tag = vec!['$'];
        loop {
            let c = self.peek(tag.len())?;
            if c == '$' {
                tag.push(c);
                return Some(tag);
            }
            let allowed = c.is_alphabetic() || c == '_' || (tag.len() > 1 && c.is_ascii_digit());
            if !allowed {
                return None;
            }
            tag.push(c);
        }
    }

    fn dollar_quoted(&mut self) {
        let line = self.line;
        let tag = self.dollar_tag().unwrap_or_default();
        for _ in 0..tag.len() {
            self.bump(Mark::Code);
        }
        while self.peek(0).is_some() {
            if self.chars[self.pos..].starts_with(&tag) {
                for _ in 0..tag.len() {
                    self.bump(Mark::Code);
                }
                break;
            }
            self.bump(Mark::Code);
        }
        self.push(Kind::Literal, String::new(), line);
    }

    fn word(&mut self) {
        let line = self.line;
        let mut text = String::new();
        while let Some(c) = self
            .peek(0)
            .filter(|&c| c.is_alphanumeric() || c == '_' || c == '$')
        {
            self.bump(Mark::Code);
            text.push(c);
        }
        self.push(Kind::Word, text, line);
    }

    fn symbol(&mut self) {
        let line = self.line;
        if let Some(c) = self.bump(Mark::Code) {
            self.push(Kind::Symbol, c.to_string(), line);
        }
    }
}

// --- token helpers ------------------------------------------------------------------------------

fn is_kw(tokens: &[Token], index: usize, keyword: &str) -> bool {
    tokens.get(index).is_some_and(|token| token.is(keyword))
}

fn starts_with(tokens: &[Token], keywords: &[&str]) -> bool {
    keywords
        .iter()
        .enumerate()
        .all(|(i, keyword)| is_kw(tokens, i, keyword))
}

fn has_kw(tokens: &[Token], keyword: &str) -> bool {
    tokens.iter().any(|token| token.is(keyword))
}

fn has_sequence(tokens: &[Token], keywords: &[&str]) -> bool {
    (0..tokens.len()).any(|start| starts_with(&tokens[start..], keywords))
}

/// Skips any number of the optional `keywords`, in any order.
fn skip_any(tokens: &[Token], mut index: usize, keywords: &[&str]) -> usize {
    while keywords.iter().any(|keyword| is_kw(tokens, index, keyword)) {
        index += 1;
    }
    index
}

/// Skips `keywords` if they appear in this order at `index` (e.g. `IF NOT EXISTS`).
fn skip_sequence(tokens: &[Token], index: usize, keywords: &[&str]) -> usize {
    match tokens.get(index..) {
        Some(rest) if starts_with(rest, keywords) => index + keywords.len(),
        _ => index,
    }
}

/// Skips a parenthesised option list such as `VACUUM (FULL, ANALYZE)`.
fn skip_options(tokens: &[Token], index: usize) -> usize {
    if !tokens.get(index).is_some_and(|token| token.is_symbol('(')) {
        return index;
    }
    match tokens[index..].iter().position(|token| token.is_symbol(')')) {
        Some(close) => index + close + 1,
        None => tokens.len(),
    }
}

fn identifier(token: &Token) -> Option<String> {
    match token.kind {
        // Unquoted identifiers fold to lower case in PostgreSQL; quoted ones are exact.
        Kind::Word => Some(token.text.to_lowercase()),
        Kind::Quoted => Some(token.text.clone()),
        Kind::Literal | Kind::Symbol => None,
    }
}

/// A possibly schema-qualified table name at `index`, and the index after it. `public.` is
/// dropped so that `public.t` and `t` compare equal.
fn relation_name(tokens: &[Token], index: usize) -> Option<(String, usize)> {
    let first = identifier(tokens.get(index)?)?;
    let dotted = tokens.get(index + 1).is_some_and(|token| token.is_symbol('.'));
    if let Some(second) = tokens.get(index + 2).filter(|_| dotted).and_then(identifier) {
        let name = if first == "public" {
            second
        } else {
            format!("{first}.{second}")
        };
        return Some((name, index + 3));
    }
    Some((first, index + 1))
}

/// Splits on `separator` outside parentheses, e.g. the actions of one `ALTER TABLE`.
fn split_top_level(tokens: &[Token], separator: char) -> Vec<&[Token]> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, token) in tokens.iter().enumerate() {
        if token.is_symbol('(') {
            depth += 1;
        } else if token.is_symbol(')') {
            depth = depth.saturating_sub(1);
        } else if depth == 0 && token.is_symbol(separator) {
            parts.push(&tokens[start..i]);
            start = i + 1;
        }
    }
    parts.push(&tokens[start..]);
    parts.retain(|part| !part.is_empty());
    parts
}

// --- statement rules ----------------------------------------------------------------------------

/// What the rules need to know about the file a statement is in.
struct FileState {
    /// Tables created earlier in this file: nobody else can be using them yet.
    created: HashSet<String>,
    no_transaction: bool,
    statement_count: usize,
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
struct Violation {
    rule: Rule,
    line: usize,
    message: String,
}

fn violation(rule: Rule, line: usize, message: impl Into<String>) -> Violation {
    Violation {
        rule,
        line,
        message: message.into(),
    }
}

fn contract_step(line: usize, what: String) -> Violation {
    let message = format!(
        "{what} is a contract step that breaks binaries still using it during a rolling deploy: \
         precede it with `-- contract: <why nothing uses it any more>`"
    );
    violation(Rule::ContractWithoutReason, line, message)
}

fn check_statement(tokens: &[Token], file: &mut FileState) -> Vec<Violation> {
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
    let index = skip_any(
        tokens,
        skip_options(tokens, 1),
        &["FULL", "FREEZE", "VERBOSE", "ANALYZE"],
    );
    if !has_kw(&tokens[..index], "FULL") {
        return;
    }
    if let Some(target) = file.existing_target(tokens, index) {
        let message = format!("VACUUM FULL rewrites {target} under an ACCESS EXCLUSIVE lock");
        found.push(violation(Rule::TableRewrite, line, message));
    }
}

fn check_create(tokens: &[Token], file: &mut FileState, found: &mut Vec<Violation>) {
    let modifiers = [
        "OR",
        "REPLACE",
        "GLOBAL",
        "LOCAL",
        "TEMP",
        "TEMPORARY",
        "UNLOGGED",
        "UNIQUE",
    ];
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
    } else if ["TABLESPACE", "LOGGED", "UNLOGGED", "ACCESS"]
        .iter()
        .any(|k| starts_with(action, &["SET", k]))
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

const SERIAL_TYPES: [&str; 6] = [
    "SERIAL",
    "BIGSERIAL",
    "SMALLSERIAL",
    "SERIAL2",
    "SERIAL4",
    "SERIAL8",
];

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
    let volatile_default = default_at.is_some_and(|at| {
        definition[at..]
            .iter()
            .any(|token| VOLATILE_DEFAULTS.iter().any(|f| token.is(f)))
    });
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
    let mut finding = |line, rule, message| {
        findings.push(Finding {
            file: file.to_owned(),
            line,
            rule,
            message,
        })
    };

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
                Some("") => violation
                    .message
                    .push_str(" (the `-- contract:` comment above it gives no reason)"),
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
mod tests {
    use super::*;

    const FILE: &str = "20261123000001_test.sql";

    fn migration(file_name: &str, sql: &str) -> Migration {
        Migration {
            file_name: file_name.to_owned(),
            sql: sql.to_owned(),
        }
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
        let names = [
            "20261123000001_a.sql",
            "20261123000002_b.sql",
            "20261201000000_c.sql",
        ];
        assert_eq!(rules_of_files(&names), []);
    }

    #[test]
    fn a_duplicate_version_is_reported() {
        let names = ["20261123000001_a.sql", "20261123000001_b.sql"];
        assert_eq!(rules_of_files(&names), [Rule::VersionOrder]);
    }

    #[test]
    fn a_decreasing_version_is_reported() {
        let names = [
            "20261123000002_a.sql",
            "20261123000001_b.sql",
            "20261123000003_c.sql",
        ];
        assert_eq!(rules_of_files(&names), [Rule::VersionOrder]);
    }

    // --- CREATE INDEX ---------------------------------------------------------------------------

    #[test]
    fn creating_an_index_on_an_existing_table_without_concurrently_is_reported() {
        assert_eq!(
            rules("CREATE INDEX customers_name_idx ON customers (name);"),
            [Rule::IndexNotConcurrent]
        );
        assert_eq!(
            rules("create unique index if not exists i on only public.customers (name);"),
            [Rule::IndexNotConcurrent]
        );
        assert_eq!(
            rules("CREATE INDEX ON customers USING gin (tags);"),
            [Rule::IndexNotConcurrent]
        );
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
        assert_eq!(
            rules("ALTER TABLE customers ALTER COLUMN name TYPE varchar(200);"),
            [Rule::ColumnTypeChange]
        );
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
        assert_eq!(
            rules("ALTER TABLE customers ALTER COLUMN email SET NOT NULL;"),
            [Rule::SetNotNull]
        );
    }

    #[test]
    fn set_not_null_on_a_new_table_is_fine() {
        assert_eq!(
            rules("CREATE TABLE t (n int);\nALTER TABLE t ALTER n SET NOT NULL;"),
            []
        );
    }

    // --- ADD COLUMN -----------------------------------------------------------------------------

    #[test]
    fn adding_a_not_null_column_without_default_is_reported() {
        assert_eq!(
            rules("ALTER TABLE customers ADD COLUMN tier text NOT NULL;"),
            [Rule::NotNullWithoutDefault]
        );
        assert_eq!(
            rules("ALTER TABLE customers ADD IF NOT EXISTS tier text NOT NULL;"),
            [Rule::NotNullWithoutDefault]
        );
    }

    #[test]
    fn adding_a_not_null_column_with_a_default_is_fine() {
        assert_eq!(
            rules("ALTER TABLE customers ADD COLUMN tier text NOT NULL DEFAULT 'basic';"),
            []
        );
        assert_eq!(
            rules("ALTER TABLE customers ADD COLUMN seen_at timestamptz NOT NULL DEFAULT now();"),
            []
        );
    }

    #[test]
    fn adding_a_nullable_column_is_fine() {
        assert_eq!(
            rules("ALTER TABLE customers ADD COLUMN note text, ADD COLUMN score int NULL;"),
            []
        );
    }

    #[test]
    fn adding_a_column_with_a_volatile_default_is_a_table_rewrite() {
        assert_eq!(
            rules("ALTER TABLE customers ADD COLUMN token uuid NOT NULL DEFAULT gen_random_uuid();"),
            [Rule::TableRewrite]
        );
        assert_eq!(
            rules("ALTER TABLE customers ADD COLUMN n bigserial;"),
            [Rule::TableRewrite]
        );
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
        assert_eq!(
            lines,
            [(3, Rule::NotNullWithoutDefault), (4, Rule::ColumnTypeChange)]
        );
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
        assert_eq!(
            rules("ALTER TABLE samples ADD CHECK (qty > 0);"),
            [Rule::ConstraintNotValid]
        );
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
        assert_eq!(
            rules("ALTER TABLE samples ADD COLUMN qty int CHECK (qty > 0);"),
            [Rule::ConstraintNotValid]
        );
    }

    #[test]
    fn adding_unique_or_primary_key_without_an_index_is_reported() {
        assert_eq!(
            rules("ALTER TABLE customers ADD CONSTRAINT email_key UNIQUE (email);"),
            [Rule::UniqueWithoutIndex]
        );
        assert_eq!(
            rules("ALTER TABLE customers ADD PRIMARY KEY (id);"),
            [Rule::UniqueWithoutIndex]
        );
        assert_eq!(
            rules("ALTER TABLE customers ADD COLUMN code text UNIQUE;"),
            [Rule::UniqueWithoutIndex]
        );
    }

    #[test]
    fn adding_unique_or_primary_key_using_an_index_is_fine() {
        assert_eq!(
            rules("ALTER TABLE customers ADD CONSTRAINT email_key UNIQUE USING INDEX email_idx;"),
            []
        );
        assert_eq!(
            rules("ALTER TABLE customers ADD PRIMARY KEY USING INDEX customers_id_idx;"),
            []
        );
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
        assert_eq!(
            rules("CLUSTER customers USING customers_pkey;"),
            [Rule::TableRewrite]
        );
        assert_eq!(rules("CLUSTER;"), [Rule::TableRewrite]);
    }

    #[test]
    fn table_rewriting_set_actions_are_reported() {
        assert_eq!(rules("ALTER TABLE customers SET LOGGED;"), [Rule::TableRewrite]);
        assert_eq!(rules("ALTER TABLE customers SET (fillfactor = 70);"), []);
    }

    #[test]
    fn lock_table_is_reported() {
        assert_eq!(
            rules("LOCK TABLE customers IN ACCESS EXCLUSIVE MODE;"),
            [Rule::ExplicitLock]
        );
        assert_eq!(rules("lock customers;"), [Rule::ExplicitLock]);
    }

    #[test]
    fn locking_a_new_table_is_fine() {
        assert_eq!(
            rules("CREATE TABLE t (id int);\nLOCK TABLE t;\nCLUSTER t USING t_idx;"),
            []
        );
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
        assert_eq!(
            rules("CREATE TABLE t (a int);\nALTER TABLE t DROP COLUMN a;"),
            [Rule::ContractWithoutReason]
        );
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
        assert!(
            found[0].message.contains("gives no reason"),
            "{}",
            found[0].message
        );
    }

    #[test]
    fn renaming_or_dropping_constraints_is_not_a_contract_step() {
        assert_eq!(
            rules("ALTER TABLE customers RENAME CONSTRAINT a TO b, DROP CONSTRAINT c;"),
            []
        );
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
        for sql in [
            "SELECT 'open",
            "SELECT $$ open",
            "/* open",
            "SELECT \"open",
            "E'\\",
            "$a",
        ] {
            let _ = findings(sql);
        }
    }

    // --- reporting and loading ------------------------------------------------------------------

    #[test]
    fn a_finding_displays_as_file_line_rule_message() {
        let found = findings("SELECT 1;\nLOCK TABLE customers;");
        let shown = found[0].to_string();
        assert!(
            shown.starts_with("20261123000001_test.sql:2: explicit-lock: LOCK on `customers`"),
            "{shown}"
        );
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
            [
                migration("20261123000001_a.sql", "SELECT 1;"),
                migration("20261123000002_b.sql", "SELECT 2;"),
            ]
        );
        Ok(())
    }

    #[test]
    fn load_dir_fails_for_a_missing_directory() {
        assert!(load_dir(Path::new("/nonexistent/migrations")).is_err());
    }
}
