//! Lexing for the migration lint: splits SQL into statements of tokens, skipping comments and the
//! contents of string literals, quoted identifiers and dollar-quoted bodies (so keywords inside them
//! never count), and records which lines hold code or comments. Also the helpers the rules use to
//! match keywords and names in a statement's tokens.

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
pub(super) struct Token {
    kind: Kind,
    text: String,
    pub(super) line: usize,
}

impl Token {
    pub(super) fn is(&self, keyword: &str) -> bool {
        self.kind == Kind::Word && self.text.eq_ignore_ascii_case(keyword)
    }

    pub(super) fn is_symbol(&self, symbol: char) -> bool {
        self.kind == Kind::Symbol && self.text.starts_with(symbol)
    }
}

/// What a source line holds, to find the comment block directly above a statement.
#[derive(Debug, Default)]
pub(super) struct LineInfo {
    pub(super) code: bool,
    pub(super) comment: bool,
    /// The text after `--`, if the line has a line comment.
    pub(super) line_comment: Option<String>,
}

pub(super) struct Lexed {
    pub(super) statements: Vec<Vec<Token>>,
    /// Indexed by 1-based line number; index 0 is unused.
    pub(super) lines: Vec<LineInfo>,
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
pub(super) fn lex(sql: &str) -> Lexed {
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
    Lexed { statements: lexer.statements, lines: lexer.lines }
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
        while let Some(c) = self.peek(0).filter(|&c| c.is_alphanumeric() || c == '_' || c == '$') {
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

pub(super) fn is_kw(tokens: &[Token], index: usize, keyword: &str) -> bool {
    tokens.get(index).is_some_and(|token| token.is(keyword))
}

pub(super) fn starts_with(tokens: &[Token], keywords: &[&str]) -> bool {
    keywords.iter().enumerate().all(|(i, keyword)| is_kw(tokens, i, keyword))
}

pub(super) fn has_kw(tokens: &[Token], keyword: &str) -> bool {
    tokens.iter().any(|token| token.is(keyword))
}

pub(super) fn has_sequence(tokens: &[Token], keywords: &[&str]) -> bool {
    (0..tokens.len()).any(|start| starts_with(&tokens[start..], keywords))
}

/// Skips any number of the optional `keywords`, in any order.
pub(super) fn skip_any(tokens: &[Token], mut index: usize, keywords: &[&str]) -> usize {
    while keywords.iter().any(|keyword| is_kw(tokens, index, keyword)) {
        index += 1;
    }
    index
}

/// Skips `keywords` if they appear in this order at `index` (e.g. `IF NOT EXISTS`).
pub(super) fn skip_sequence(tokens: &[Token], index: usize, keywords: &[&str]) -> usize {
    match tokens.get(index..) {
        Some(rest) if starts_with(rest, keywords) => index + keywords.len(),
        _ => index,
    }
}

/// Skips a parenthesised option list such as `VACUUM (FULL, ANALYZE)`.
pub(super) fn skip_options(tokens: &[Token], index: usize) -> usize {
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
pub(super) fn relation_name(tokens: &[Token], index: usize) -> Option<(String, usize)> {
    let first = identifier(tokens.get(index)?)?;
    let dotted = tokens.get(index + 1).is_some_and(|token| token.is_symbol('.'));
    if let Some(second) = tokens.get(index + 2).filter(|_| dotted).and_then(identifier) {
        let name = if first == "public" { second } else { format!("{first}.{second}") };
        return Some((name, index + 3));
    }
    Some((first, index + 1))
}

/// Splits on `separator` outside parentheses, e.g. the actions of one `ALTER TABLE`.
pub(super) fn split_top_level(tokens: &[Token], separator: char) -> Vec<&[Token]> {
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
