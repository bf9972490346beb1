//! Lexer and parser for the text/template subset.

use super::TemplateError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Number {
    pub(crate) text: String,
    pub(crate) int: Option<i64>,
    pub(crate) uint: bool,
    pub(crate) float: Option<f64>,
}

#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Dot(usize),
    Nil(usize),
    Bool(usize, bool),
    Num(usize, Number),
    Str(usize, String, Vec<u8>),
    /// `.A.B`
    Field(usize, Vec<String>),
    /// `$x.A`
    Var(usize, String, Vec<String>),
    Ident(usize, String),
    Pipe(Box<Pipe>),
    /// `(pipe).A.B`
    Chain(usize, Box<Arg>, Vec<String>),
}

impl Arg {
    pub(crate) fn pos(&self) -> usize {
        match self {
            Arg::Dot(p)
            | Arg::Nil(p)
            | Arg::Bool(p, _)
            | Arg::Num(p, _)
            | Arg::Str(p, ..)
            | Arg::Field(p, _)
            | Arg::Var(p, ..)
            | Arg::Ident(p, _)
            | Arg::Chain(p, ..) => *p,
            Arg::Pipe(pipe) => pipe.pos,
        }
    }

    /// The text Go's `Node.String()` gives.
    pub(crate) fn text(&self) -> String {
        match self {
            Arg::Dot(_) => ".".into(),
            Arg::Nil(_) => "nil".into(),
            Arg::Bool(_, b) => b.to_string(),
            Arg::Num(_, n) => n.text.clone(),
            Arg::Str(_, quoted, _) => quoted.clone(),
            Arg::Field(_, f) => f.iter().map(|s| format!(".{s}")).collect(),
            Arg::Var(_, v, f) => {
                let mut s = v.clone();
                for x in f {
                    s.push('.');
                    s.push_str(x);
                }
                s
            }
            Arg::Ident(_, n) => n.clone(),
            Arg::Pipe(p) => p.text(),
            Arg::Chain(_, inner, f) => {
                let mut s = match inner.as_ref() {
                    Arg::Pipe(p) => format!("({})", p.text()),
                    other => other.text(),
                };
                for x in f {
                    s.push('.');
                    s.push_str(x);
                }
                s
            }
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Command {
    pub(crate) pos: usize,
    pub(crate) args: Vec<Arg>,
}

impl Command {
    pub(crate) fn text(&self) -> String {
        self.args
            .iter()
            .map(|a| match a {
                Arg::Pipe(p) => format!("({})", p.text()),
                other => other.text(),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Pipe {
    pub(crate) pos: usize,
    pub(crate) decl: Vec<String>,
    pub(crate) assign: bool,
    pub(crate) cmds: Vec<Command>,
}

impl Pipe {
    pub(crate) fn text(&self) -> String {
        let mut s = String::new();
        if !self.decl.is_empty() {
            s.push_str(&self.decl.join(", "));
            s.push_str(if self.assign { " = " } else { " := " });
        }
        s.push_str(
            &self
                .cmds
                .iter()
                .map(Command::text)
                .collect::<Vec<_>>()
                .join(" | "),
        );
        s
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Text(String),
    Action(usize, Pipe),
    If(Pipe, Vec<Node>, Vec<Node>),
    With(Pipe, Vec<Node>, Vec<Node>),
    Range(Pipe, Vec<Node>, Vec<Node>),
    /// `{{template "name" pipeline}}` (also what `{{block}}` leaves in place): the
    /// position of the name, the name, the optional pipeline.
    Template(usize, Vec<u8>, Option<Pipe>),
    Break,
    Continue,
}

// ---------------------------------------------------------------- lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Text(String),
    Left,
    Right,
    Space,
    Pipe,
    LParen,
    RParen,
    Declare,
    Assign,
    Comma,
    Str(String, Vec<u8>),
    Char(String),
    Number(String),
    Bool(bool),
    Nil,
    Dot,
    Field(String),
    Var(String),
    Ident(String),
    Keyword(&'static str),
    Punct(char),
    Eof,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    pos: usize,
    line: usize,
}

const KEYWORDS: [&str; 10] = [
    "block", "break", "continue", "define", "else", "end", "if", "range", "template", "with",
];

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphabetic() || c.is_numeric()
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    toks: Vec<Token>,
    paren_depth: usize,
    /// (position, line) of the last line computation, so lines are counted incrementally.
    line_cache: std::cell::Cell<(usize, usize)>,
}

impl<'a> Lexer<'a> {
    fn line_at(&self, pos: usize) -> usize {
        let (cpos, cline) = self.line_cache.get();
        let line = if pos >= cpos {
            cline
                + self.src.as_bytes()[cpos..pos]
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count()
        } else {
            1 + self.src.as_bytes()[..pos]
                .iter()
                .filter(|b| **b == b'\n')
                .count()
        };
        self.line_cache.set((pos, line));
        line
    }

    fn err(&self, pos: usize, msg: impl Into<String>) -> TemplateError {
        TemplateError::parse(self.line_at(pos.min(self.src.len())), pos, msg)
    }

    fn push(&mut self, tok: Tok, pos: usize) {
        let line = self.line_at(pos);
        self.toks.push(Token { tok, pos, line });
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn run(mut self) -> Result<Vec<Token>, TemplateError> {
        let b = self.src.as_bytes();
        loop {
            // Text up to the next `{{`.
            let start = self.pos;
            let Some(off) = self.rest().find("{{") else {
                if start < self.src.len() {
                    self.push(Tok::Text(self.src[start..].to_owned()), start);
                }
                self.push(Tok::Eof, self.src.len());
                return Ok(self.toks);
            };
            let delim = start + off;
            let trim_left = b.len() >= delim + 4 && b[delim + 2] == b'-' && is_space(b[delim + 3]);
            let mut text = &self.src[start..delim];
            if trim_left {
                text = text.trim_end_matches([' ', '\t', '\r', '\n']);
            }
            if !text.is_empty() {
                self.push(Tok::Text(text.to_owned()), start);
            }
            self.pos = delim + 2 + if trim_left { 2 } else { 0 };
            // Comment?
            if self.rest().starts_with("/*") {
                let cstart = self.pos;
                let Some(end) = self.rest().find("*/") else {
                    return Err(self.err(delim, "unclosed comment"));
                };
                self.pos += end + 2;
                let (is_delim, trim) = self.at_right();
                if !is_delim {
                    return Err(self.err(cstart, "comment ends before closing delimiter"));
                }
                self.pos += if trim { 4 } else { 2 };
                if trim {
                    self.trim_following();
                }
                continue;
            }
            self.push(Tok::Left, delim);
            self.paren_depth = 0;
            self.inside_action(delim)?;
        }
    }

    fn at_right(&self) -> (bool, bool) {
        let r = self.rest().as_bytes();
        if r.len() >= 4 && is_space(r[0]) && r[1] == b'-' && &r[2..4] == b"}}" {
            return (true, true);
        }
        (r.starts_with(b"}}"), false)
    }

    fn trim_following(&mut self) {
        let r = self.rest();
        let trimmed = r.trim_start_matches([' ', '\t', '\r', '\n']);
        self.pos += r.len() - trimmed.len();
    }

    fn inside_action(&mut self, open: usize) -> Result<(), TemplateError> {
        loop {
            let (is_delim, trim) = self.at_right();
            if is_delim {
                if self.paren_depth > 0 {
                    return Err(self.err(self.pos, "unclosed left paren"));
                }
                let p = self.pos + if trim { 1 } else { 0 };
                self.push(Tok::Right, p);
                self.pos += if trim { 4 } else { 2 };
                if trim {
                    self.trim_following();
                }
                return Ok(());
            }
            let start = self.pos;
            let Some(c) = self.rest().chars().next() else {
                return Err(self.err(open, "unclosed action"));
            };
            match c {
                ' ' | '\t' | '\r' | '\n' => {
                    // Spaces, stopping before a trim-marked right delimiter.
                    while let Some(&ch) = self.rest().as_bytes().first() {
                        if !is_space(ch) {
                            break;
                        }
                        let (d, _) = self.at_right();
                        if d {
                            break;
                        }
                        self.pos += 1;
                    }
                    if self.pos == start {
                        // A lone space before ` -}}`: handled by at_right next round.
                        continue;
                    }
                    self.push(Tok::Space, start);
                }
                '=' => {
                    self.pos += 1;
                    self.push(Tok::Assign, start);
                }
                ':' => {
                    if !self.rest().starts_with(":=") {
                        return Err(self.err(start, "expected :="));
                    }
                    self.pos += 2;
                    self.push(Tok::Declare, start);
                }
                '|' => {
                    self.pos += 1;
                    self.push(Tok::Pipe, start);
                }
                ',' => {
                    self.pos += 1;
                    self.push(Tok::Comma, start);
                }
                '"' => {
                    let s = self.quoted(start, '"')?;
                    let raw = &self.src[start..self.pos];
                    self.push(Tok::Str(raw.to_owned(), s), start);
                }
                '`' => {
                    let Some(end) = self.src[start + 1..].find('`') else {
                        return Err(self.err(start, "unterminated raw quoted string"));
                    };
                    let body = self.src[start + 1..start + 1 + end].replace('\r', "");
                    self.pos = start + end + 2;
                    self.push(
                        Tok::Str(self.src[start..self.pos].to_owned(), body.into_bytes()),
                        start,
                    );
                }
                '\'' => {
                    self.quoted(start, '\'')?;
                    self.push(Tok::Char(self.src[start..self.pos].to_owned()), start);
                }
                '$' => {
                    self.pos += 1;
                    let n = self.ident_len();
                    self.pos += n;
                    self.push(Tok::Var(self.src[start..self.pos].to_owned()), start);
                }
                '(' => {
                    self.pos += 1;
                    self.paren_depth += 1;
                    self.push(Tok::LParen, start);
                }
                ')' => {
                    if self.paren_depth == 0 {
                        return Err(self.err(start, "unexpected right paren"));
                    }
                    self.paren_depth -= 1;
                    self.pos += 1;
                    self.push(Tok::RParen, start);
                }
                '.' => {
                    let next = self.rest().as_bytes().get(1).copied();
                    if next.is_some_and(|d| d.is_ascii_digit()) {
                        self.number(start)?;
                    } else {
                        self.pos += 1;
                        let n = self.ident_len();
                        if n == 0 {
                            self.push(Tok::Dot, start);
                        } else {
                            self.pos += n;
                            self.push(Tok::Field(self.src[start + 1..self.pos].to_owned()), start);
                        }
                    }
                }
                '+' | '-' | '0'..='9' => self.number(start)?,
                c if is_alnum(c) => {
                    let n = self.ident_len();
                    self.pos += n;
                    let word = &self.src[start..self.pos];
                    // An identifier must be followed by a space, delimiter, `.`, `|`, `(`, `)`.
                    if let Some(nc) = self.rest().chars().next()
                        && !(is_space(nc as u8) && nc.is_ascii()
                            || matches!(nc, '.' | '|' | '(' | ')' | ',' | '=' | ':')
                            || self.rest().starts_with("}}"))
                    {
                        return Err(self.err(start, format!("bad character {}", go_char(nc))));
                    }
                    let tok = match word {
                        "true" => Tok::Bool(true),
                        "false" => Tok::Bool(false),
                        "nil" => Tok::Nil,
                        w => match KEYWORDS.iter().find(|k| **k == w) {
                            Some(k) => Tok::Keyword(k),
                            None => Tok::Ident(w.to_owned()),
                        },
                    };
                    self.push(tok, start);
                }
                other if other.is_ascii() && !other.is_ascii_control() => {
                    self.pos += 1;
                    self.push(Tok::Punct(other), start);
                }
                other => {
                    return Err(self.err(start, format!("bad character {}", go_char(other))));
                }
            }
        }
    }

    fn ident_len(&self) -> usize {
        self.rest()
            .char_indices()
            .find(|(_, c)| !is_alnum(*c))
            .map(|(i, _)| i)
            .unwrap_or(self.rest().len())
    }

    fn quoted(&mut self, start: usize, q: char) -> Result<Vec<u8>, TemplateError> {
        let body_start = start + 1;
        let mut i = body_start;
        let b = self.src.as_bytes();
        loop {
            match b.get(i) {
                None | Some(b'\n') => {
                    let what = if q == '"' {
                        "unterminated quoted string"
                    } else {
                        "unterminated character constant"
                    };
                    return Err(self.err(start, what));
                }
                Some(b'\\') => i += 2,
                Some(&c) if c == q as u8 => break,
                Some(_) => i += 1,
            }
        }
        self.pos = i + 1;
        let raw = &self.src[start..self.pos];
        if q == '"' {
            unquote(raw).ok_or_else(|| self.err(start, format!("invalid syntax: {raw}")))
        } else {
            Ok(Vec::new())
        }
    }

    fn number(&mut self, start: usize) -> Result<(), TemplateError> {
        let b = self.src.as_bytes();
        let mut i = start;
        if matches!(b[i], b'+' | b'-') {
            i += 1;
        }
        let mut digits: &[u8] = b"0123456789_";
        if b.get(i) == Some(&b'0') && matches!(b.get(i + 1), Some(b'x' | b'X')) {
            i += 2;
            digits = b"0123456789abcdefABCDEF_";
        } else if b.get(i) == Some(&b'0') && matches!(b.get(i + 1), Some(b'o' | b'O')) {
            i += 2;
            digits = b"01234567_";
        } else if b.get(i) == Some(&b'0') && matches!(b.get(i + 1), Some(b'b' | b'B')) {
            i += 2;
            digits = b"01_";
        }
        let run = |i: &mut usize, set: &[u8]| {
            while *i < b.len() && set.contains(&b[*i]) {
                *i += 1;
            }
        };
        run(&mut i, digits);
        if b.get(i) == Some(&b'.') {
            i += 1;
            run(&mut i, digits);
        }
        if digits.len() == 11 && matches!(b.get(i), Some(b'e' | b'E'))
            || digits.len() == 23 && matches!(b.get(i), Some(b'p' | b'P'))
        {
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            run(&mut i, b"0123456789_");
        }
        if b.get(i) == Some(&b'i') {
            i += 1;
        }
        // Must not be followed by an alphanumeric.
        if let Some(c) = self.src[i..].chars().next()
            && is_alnum(c)
        {
            let end = i + c.len_utf8();
            return Err(self.err(
                start,
                format!("bad number syntax: {:?}", &self.src[start..end]),
            ));
        }
        self.pos = i;
        self.push(Tok::Number(self.src[start..i].to_owned()), start);
        Ok(())
    }
}

fn go_char(c: char) -> String {
    format!("U+{:04X} '{}'", c as u32, c)
}

/// Go's `strconv.Unquote` for a double-quoted string: the bytes of the Go string, which
/// `\x` and octal escapes can make invalid UTF-8.
pub(crate) fn unquote(raw: &str) -> Option<Vec<u8>> {
    let body = raw.strip_prefix('"')?.strip_suffix('"')?;
    let mut out: Vec<u8> = Vec::with_capacity(body.len());
    let mut it = body.chars().peekable();
    let push_char = |out: &mut Vec<u8>, c: char| {
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    };
    while let Some(c) = it.next() {
        if c == '"' || c == '\n' {
            return None;
        }
        if c != '\\' {
            push_char(&mut out, c);
            continue;
        }
        let e = it.next()?;
        let hexn = |it: &mut std::iter::Peekable<std::str::Chars<'_>>, n: usize| -> Option<u32> {
            let mut v = 0u32;
            for _ in 0..n {
                v = v * 16 + it.next()?.to_digit(16)?;
            }
            Some(v)
        };
        match e {
            'a' => out.push(0x07),
            'b' => out.push(0x08),
            'f' => out.push(0x0c),
            'n' => out.push(b'\n'),
            'r' => out.push(b'\r'),
            't' => out.push(b'\t'),
            'v' => out.push(0x0b),
            '\\' => out.push(b'\\'),
            '"' => out.push(b'"'),
            'x' => out.push(hexn(&mut it, 2)? as u8),
            '0'..='7' => {
                let mut v = e.to_digit(8)?;
                for _ in 0..2 {
                    v = v * 8 + it.next()?.to_digit(8)?;
                }
                if v > 255 {
                    return None;
                }
                out.push(v as u8);
            }
            'u' => push_char(&mut out, char::from_u32(hexn(&mut it, 4)?)?),
            'U' => push_char(&mut out, char::from_u32(hexn(&mut it, 8)?)?),
            _ => return None,
        }
    }
    Some(out)
}

/// Parses a Go number literal as text/template does.
pub(crate) fn parse_number(text: &str) -> Option<Number> {
    if text.ends_with('i') {
        return None; // complex numbers are not supported
    }
    let clean = text.replace('_', "");
    let (neg, body) = match clean.as_bytes().first() {
        Some(b'-') => (true, &clean[1..]),
        Some(b'+') => (false, &clean[1..]),
        _ => (false, clean.as_str()),
    };
    if text.contains("__") || text.ends_with('_') {
        return None;
    }
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(h) = lower.strip_prefix("0x") {
        (16, h)
    } else if let Some(o) = lower.strip_prefix("0o") {
        (8, o)
    } else if let Some(b) = lower.strip_prefix("0b") {
        (2, b)
    } else if lower.len() > 1 && lower.starts_with('0') && lower.bytes().all(|c| c.is_ascii_digit())
    {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    let mut n = Number {
        text: text.to_owned(),
        int: None,
        uint: false,
        float: None,
    };
    if !digits.is_empty()
        && digits.bytes().all(|c| (c as char).is_digit(radix))
        && let Ok(u) = u64::from_str_radix(digits, radix)
    {
        {
            n.uint = !neg;
            let signed = if neg {
                if u <= i64::MAX as u64 + 1 {
                    Some((u as i64).wrapping_neg())
                } else {
                    None
                }
            } else {
                i64::try_from(u).ok()
            };
            n.int = signed;
            n.float = signed.map(|v| v as f64).or(Some(u as f64));
            if neg && signed.is_none() {
                n.float = Some(-(u as f64));
            }
            return Some(n);
        }
        // Too large for 64 bits: a float.
    }
    if radix == 16 || radix == 8 && lower.starts_with("0o") || radix == 2 {
        return None;
    }
    let f: f64 = body.parse().ok()?;
    if !f.is_finite()
        || !body
            .bytes()
            .next()
            .is_some_and(|c| c.is_ascii_digit() || c == b'.')
    {
        return None;
    }
    let f = if neg { -f } else { f };
    n.float = Some(f);
    if f.fract() == 0.0 && f.abs() < 9.2e18 {
        n.int = Some(f as i64);
        n.uint = f >= 0.0;
    }
    Some(n)
}

/// Character constants (`'a'`) as numbers.
fn char_number(raw: &str) -> Option<Number> {
    let inner = raw.strip_prefix('\'')?.strip_suffix('\'')?;
    let v = if inner.starts_with('\\') {
        let s = unquote(&format!("\"{}\"", inner.replace("\\'", "'")))?;
        // A byte escape (`'\xff'`, `'\377'`) is that value; anything else one character.
        if let [b] = s.as_slice() {
            i64::from(*b)
        } else {
            let mut it = std::str::from_utf8(&s).ok()?.chars();
            let c = it.next()?;
            if it.next().is_some() {
                return None;
            }
            c as u32 as i64
        }
    } else {
        let mut it = inner.chars();
        let c = it.next()?;
        if it.next().is_some() {
            return None;
        }
        c as u32 as i64
    };
    Some(Number {
        text: raw.to_owned(),
        int: Some(v),
        uint: true,
        float: Some(v as f64),
    })
}

// ---------------------------------------------------------------- parser

/// The name the SDK gives the template it parses (`template.New("template")`).
pub(crate) const MAIN: &[u8] = b"template";

/// Every named template of a parse: the main one under [`MAIN`] (unless only a definition
/// of that name has content), and each `{{define}}` and `{{block}}`.
pub(crate) struct Parsed {
    pub(crate) templates: Vec<(Vec<u8>, Vec<Node>)>,
    /// Whether any `{{template}}` or `{{block}}` occurs (execution can then recurse).
    pub(crate) calls: bool,
}

impl Parsed {
    /// Go's `Tree.add`: a name is taken by the first tree with content; a second tree with
    /// content is an error; an empty tree never replaces one with content.
    fn add(&mut self, name: Vec<u8>, nodes: Vec<Node>) -> Result<(), String> {
        match self.templates.iter_mut().find(|(n, _)| *n == name) {
            None => self.templates.push((name, nodes)),
            Some(slot) if is_empty_tree(&slot.1) => slot.1 = nodes,
            Some(_) if !is_empty_tree(&nodes) => {
                return Err(format!(
                    "template: multiple definition of template {}",
                    super::value::go_quote_bytes(&name)
                ));
            }
            Some(_) => {}
        }
        Ok(())
    }
}

/// Go's `parse.IsEmptyTree`: only white space (comments leave no node here).
fn is_empty_tree(nodes: &[Node]) -> bool {
    nodes
        .iter()
        .all(|n| matches!(n, Node::Text(t) if t.trim().is_empty()))
}

struct Parser<'a> {
    toks: Vec<Token>,
    i: usize,
    vars: Vec<String>,
    funcs: &'a dyn Fn(&str) -> bool,
    range_depth: usize,
    depth: usize,
    /// Whether `list` is parsing the main template's top level (where `define` may appear).
    top: bool,
    parsed: Parsed,
}

/// Nesting limit for parentheses and control blocks (Go allows more; deeper templates are
/// rejected here to keep recursion bounded).
const MAX_DEPTH: usize = 100;

enum End {
    Close,
    Else,
    Eof,
}

pub(crate) fn parse(src: &str, funcs: &dyn Fn(&str) -> bool) -> Result<Parsed, TemplateError> {
    let toks = Lexer {
        src,
        pos: 0,
        toks: Vec::new(),
        paren_depth: 0,
        line_cache: std::cell::Cell::new((0, 1)),
    }
    .run()?;
    let mut p = Parser {
        toks,
        i: 0,
        vars: vec!["$".into()],
        funcs,
        range_depth: 0,
        depth: 0,
        top: true,
        parsed: Parsed {
            templates: Vec::new(),
            calls: false,
        },
    };
    let (nodes, end) = p.list()?;
    match end {
        End::Eof => {}
        End::Close => return Err(p.err_prev("unexpected {{end}}")),
        End::Else => return Err(p.err_prev("unexpected {{else}}")),
    }
    if let Err(msg) = p.parsed.add(MAIN.to_vec(), nodes) {
        return Err(p.err_prev(msg));
    }
    Ok(p.parsed)
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        &self.toks[self.i.min(self.toks.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.i < self.toks.len() {
            self.i += 1;
        }
        t
    }

    fn next_non_space(&mut self) -> Token {
        loop {
            let t = self.next();
            if t.tok != Tok::Space {
                return t;
            }
        }
    }

    fn peek_non_space(&mut self) -> Token {
        let t = self.next_non_space();
        self.i -= 1;
        t
    }

    fn err_at(&self, t: &Token, msg: impl Into<String>) -> TemplateError {
        TemplateError::parse(t.line, t.pos, msg)
    }

    fn err_prev(&self, msg: impl Into<String>) -> TemplateError {
        let t = &self.toks[self.i.saturating_sub(1)];
        self.err_at(t, msg)
    }

    fn unexpected(&self, t: &Token, context: &str) -> TemplateError {
        self.err_at(
            t,
            format!("unexpected {} in {context}", item_string(&t.tok)),
        )
    }

    /// Parses nodes until `{{end}}`, `{{else}}` or EOF.
    fn list(&mut self) -> Result<(Vec<Node>, End), TemplateError> {
        let mut out = Vec::new();
        loop {
            let t = self.next();
            match t.tok {
                Tok::Eof => return Ok((out, End::Eof)),
                Tok::Text(s) => out.push(Node::Text(s)),
                Tok::Left => {
                    let k = self.peek_non_space();
                    if let Tok::Keyword(kw) = k.tok {
                        self.next_non_space();
                        match kw {
                            "end" => {
                                self.expect_right("end")?;
                                return Ok((out, End::Close));
                            }
                            "else" => return Ok((out, End::Else)),
                            "if" | "with" | "range" => out.push(self.control(kw)?),
                            "define" if self.top => self.definition()?,
                            "template" => out.push(self.template_call()?),
                            "block" => out.push(self.block()?),
                            "break" | "continue" => {
                                if self.range_depth == 0 {
                                    return Err(self.err_at(
                                        &k,
                                        format!("{{{{{kw}}}}} outside {{{{range}}}}"),
                                    ));
                                }
                                self.expect_right(kw)?;
                                out.push(if kw == "break" {
                                    Node::Break
                                } else {
                                    Node::Continue
                                });
                            }
                            _ => {
                                // `define` below the top level: Go parses it as a command.
                                return Err(self.unexpected(&k, "command"));
                            }
                        }
                    } else {
                        let pipe = self.pipeline("command", true)?;
                        out.push(Node::Action(k.pos, pipe));
                    }
                }
                _ => return Err(self.unexpected(&t, "input")),
            }
        }
    }

    /// The quoted name after `define`, `template` or `block`.
    fn template_name(&mut self, context: &str) -> Result<(Token, Vec<u8>), TemplateError> {
        let t = self.next_non_space();
        match &t.tok {
            Tok::Str(_, name) => {
                let name = name.clone();
                Ok((t, name))
            }
            _ => Err(self.unexpected(&t, context)),
        }
    }

    /// The body of a `define` or `block` up to its `{{end}}`: a template of its own, with
    /// only `$` in scope and no enclosing `range`.
    fn body(&mut self, context: &str) -> Result<Vec<Node>, TemplateError> {
        let vars = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let range_depth = std::mem::replace(&mut self.range_depth, 0);
        let top = std::mem::replace(&mut self.top, false);
        self.depth += 1;
        let r = if self.depth > MAX_DEPTH {
            Err(self.err_prev("max expression depth exceeded"))
        } else {
            self.list()
        };
        self.depth -= 1;
        self.vars = vars;
        self.range_depth = range_depth;
        self.top = top;
        match r? {
            (nodes, End::Close) => Ok(nodes),
            (_, End::Eof) => Err(self.err_prev("unexpected EOF")),
            (_, End::Else) => Err(self.err_prev(format!("unexpected {{{{else}}}} in {context}"))),
        }
    }

    /// `{{define "name"}}…{{end}}` at the top level.
    fn definition(&mut self) -> Result<(), TemplateError> {
        const CONTEXT: &str = "define clause";
        let (_, name) = self.template_name(CONTEXT)?;
        self.expect_right(CONTEXT)?;
        let nodes = self.body(CONTEXT)?;
        self.parsed
            .add(name, nodes)
            .map_err(|msg| self.err_prev(msg))
    }

    /// `{{template "name"}}` or `{{template "name" pipeline}}`.
    fn template_call(&mut self) -> Result<Node, TemplateError> {
        const CONTEXT: &str = "template clause";
        let (t, name) = self.template_name(CONTEXT)?;
        let pipe = if self.peek_non_space().tok == Tok::Right {
            self.next_non_space();
            None
        } else {
            Some(self.pipeline(CONTEXT, true)?)
        };
        self.parsed.calls = true;
        Ok(Node::Template(t.pos, name, pipe))
    }

    /// `{{block "name" pipeline}}…{{end}}`: defines `name` and calls it in place.
    fn block(&mut self) -> Result<Node, TemplateError> {
        const CONTEXT: &str = "block clause";
        let (t, name) = self.template_name(CONTEXT)?;
        let pipe = self.pipeline(CONTEXT, true)?;
        let nodes = self.body(CONTEXT)?;
        self.parsed
            .add(name.clone(), nodes)
            .map_err(|msg| self.err_prev(msg))?;
        self.parsed.calls = true;
        Ok(Node::Template(t.pos, name, Some(pipe)))
    }

    fn expect_right(&mut self, context: &str) -> Result<(), TemplateError> {
        let t = self.next_non_space();
        if t.tok != Tok::Right {
            return Err(self.unexpected(&t, context));
        }
        Ok(())
    }

    fn control(&mut self, kw: &'static str) -> Result<Node, TemplateError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err_prev("max expression depth exceeded"));
        }
        let r = self.control_inner(kw);
        self.depth -= 1;
        r
    }

    fn control_inner(&mut self, kw: &'static str) -> Result<Node, TemplateError> {
        let mark = self.vars.len();
        let pipe = self.pipeline(kw, true)?;
        if kw == "range" {
            self.range_depth += 1;
        }
        let top = std::mem::replace(&mut self.top, false);
        let listed = self.list();
        self.top = top;
        let (list, end) = listed?;
        if kw == "range" {
            self.range_depth -= 1;
        }
        let else_list = match end {
            End::Close => Vec::new(),
            End::Eof => return Err(self.err_prev("unexpected EOF")),
            End::Else => {
                // `{{else}}`, `{{else if ...}}` or `{{else with ...}}`.
                let t = self.peek_non_space();
                if (kw == "if" || kw == "with") && matches!(t.tok, Tok::Keyword(k) if k == kw) {
                    self.next_non_space();
                    // The chained control consumes the shared {{end}}.
                    self.vars.truncate(mark);
                    vec![self.control(kw)?]
                } else {
                    self.expect_right("else")?;
                    let top = std::mem::replace(&mut self.top, false);
                    let listed = self.list();
                    self.top = top;
                    let (l, e) = listed?;
                    match e {
                        End::Close => l,
                        End::Eof => return Err(self.err_prev("unexpected EOF")),
                        End::Else => {
                            return Err(self.err_prev("expected end; found {{else}}"));
                        }
                    }
                }
            }
        };
        self.vars.truncate(mark);
        Ok(match kw {
            "if" => Node::If(pipe, list, else_list),
            "with" => Node::With(pipe, list, else_list),
            _ => Node::Range(pipe, list, else_list),
        })
    }

    /// Parses a pipeline up to `}}` (or `)` when `action` is false).
    fn pipeline(&mut self, context: &str, action: bool) -> Result<Pipe, TemplateError> {
        let start = self.peek_non_space();
        let mut pipe = Pipe {
            pos: start.pos,
            decl: Vec::new(),
            assign: false,
            cmds: Vec::new(),
        };
        // Declarations: `$x :=`, `$x =`, `$i, $e :=` (range).
        if let Tok::Var(_) = start.tok {
            let save = self.i;
            let v = self.next_non_space();
            let after = self.peek_non_space();
            let name = match &v.tok {
                Tok::Var(n) => n.clone(),
                _ => unreachable!(),
            };
            match after.tok {
                Tok::Declare | Tok::Assign => {
                    self.next_non_space();
                    pipe.assign = after.tok == Tok::Assign;
                    if pipe.assign && !self.vars.contains(&name) {
                        return Err(self.err_at(&v, format!("undefined variable {name:?}")));
                    }
                    pipe.decl.push(name);
                }
                Tok::Comma if context == "range" => {
                    self.next_non_space();
                    let v2 = self.next_non_space();
                    let Tok::Var(n2) = v2.tok.clone() else {
                        return Err(self.err_at(&v2, "range can only initialize variables"));
                    };
                    let d = self.next_non_space();
                    if !matches!(d.tok, Tok::Declare | Tok::Assign) {
                        return Err(self.unexpected(&d, "range"));
                    }
                    pipe.assign = d.tok == Tok::Assign;
                    pipe.decl.push(name);
                    pipe.decl.push(n2);
                }
                _ => self.i = save,
            }
        }
        loop {
            let t = self.peek_non_space();
            match t.tok {
                Tok::Right if action => {
                    self.next_non_space();
                    break;
                }
                Tok::RParen if !action => {
                    self.next_non_space();
                    break;
                }
                Tok::Bool(_)
                | Tok::Char(_)
                | Tok::Dot
                | Tok::Field(_)
                | Tok::Ident(_)
                | Tok::Number(_)
                | Tok::Nil
                | Tok::Str(..)
                | Tok::Var(_)
                | Tok::LParen => {
                    let cmd = self.command()?;
                    pipe.cmds.push(cmd);
                }
                _ => {
                    let t = self.next_non_space();
                    return Err(self.unexpected(&t, context));
                }
            }
        }
        if !pipe.decl.is_empty() && !pipe.assign {
            for d in &pipe.decl {
                self.vars.push(d.clone());
            }
        }
        if pipe.cmds.is_empty() {
            return Err(self.err_prev(format!("missing value for {context}")));
        }
        for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
            if matches!(
                c.args[0],
                Arg::Bool(..) | Arg::Dot(_) | Arg::Nil(_) | Arg::Num(..) | Arg::Str(..)
            ) {
                return Err(TemplateError::parse(
                    self.line_of(c.pos),
                    c.pos,
                    format!("non executable command in pipeline stage {}", i + 1),
                ));
            }
        }
        Ok(pipe)
    }

    fn line_of(&self, pos: usize) -> usize {
        let i = self.toks.partition_point(|t| t.pos < pos);
        self.toks.get(i).map(|t| t.line).unwrap_or(1)
    }

    fn command(&mut self) -> Result<Command, TemplateError> {
        let pos = self.peek_non_space().pos;
        let mut cmd = Command {
            pos,
            args: Vec::new(),
        };
        loop {
            self.skip_spaces();
            if let Some(operand) = self.operand()? {
                cmd.args.push(operand);
            }
            let t = self.next();
            match t.tok {
                Tok::Space => continue,
                Tok::Right | Tok::RParen => self.i -= 1,
                Tok::Pipe => {}
                _ => return Err(self.unexpected(&t, "operand")),
            }
            break;
        }
        if cmd.args.is_empty() {
            return Err(self.err_prev("empty command"));
        }
        Ok(cmd)
    }

    fn skip_spaces(&mut self) {
        while self.peek().tok == Tok::Space {
            self.i += 1;
        }
    }

    fn operand(&mut self) -> Result<Option<Arg>, TemplateError> {
        let Some(term) = self.term()? else {
            return Ok(None);
        };
        if let Tok::Field(_) = self.peek().tok {
            // Go positions a chained field or variable at its first `.Field` token.
            let pos = self.peek().pos;
            let mut fields = Vec::new();
            while let Tok::Field(f) = self.peek().tok.clone() {
                self.i += 1;
                fields.push(f);
            }
            return Ok(Some(match term {
                Arg::Field(_, mut f) => {
                    f.extend(fields);
                    Arg::Field(pos, f)
                }
                Arg::Var(_, v, mut f) => {
                    f.extend(fields);
                    Arg::Var(pos, v, f)
                }
                Arg::Bool(..) | Arg::Str(..) | Arg::Num(..) | Arg::Nil(_) | Arg::Dot(_) => {
                    return Err(self.err_prev(format!("unexpected . after term {:?}", term.text())));
                }
                other => Arg::Chain(pos, Box::new(other), fields),
            }));
        }
        Ok(Some(term))
    }

    fn term(&mut self) -> Result<Option<Arg>, TemplateError> {
        let t = self.next_non_space();
        Ok(Some(match t.tok.clone() {
            Tok::Ident(name) => {
                if !(self.funcs)(&name) {
                    return Err(self.err_at(&t, format!("function {name:?} not defined")));
                }
                Arg::Ident(t.pos, name)
            }
            Tok::Dot => Arg::Dot(t.pos),
            Tok::Nil => Arg::Nil(t.pos),
            Tok::Var(v) => {
                if !self.vars.contains(&v) {
                    return Err(self.err_at(&t, format!("undefined variable {v:?}")));
                }
                Arg::Var(t.pos, v, Vec::new())
            }
            Tok::Field(f) => Arg::Field(t.pos, vec![f]),
            Tok::Bool(b) => Arg::Bool(t.pos, b),
            Tok::Char(raw) => match char_number(&raw) {
                Some(n) => Arg::Num(t.pos, n),
                None => return Err(self.err_at(&t, format!("malformed character constant: {raw}"))),
            },
            Tok::Number(text) => match parse_number(&text) {
                Some(n) => Arg::Num(t.pos, n),
                None => return Err(self.err_at(&t, format!("illegal number syntax: {text:?}"))),
            },
            Tok::LParen => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(self.err_at(&t, "max expression depth exceeded"));
                }
                let pipe = self.pipeline("parenthesized pipeline", false);
                self.depth -= 1;
                Arg::Pipe(Box::new(pipe?))
            }
            Tok::Str(raw, s) => Arg::Str(t.pos, raw, s),
            _ => {
                self.i -= 1;
                return Ok(None);
            }
        }))
    }
}

/// Go's `item.String()`: keywords (with `.` and `nil`) in angle brackets, other tokens
/// quoted, shortened to ten characters and `...`.
fn item_string(t: &Tok) -> String {
    match t {
        Tok::Eof => "EOF".into(),
        Tok::Keyword(k) => format!("<{k}>"),
        Tok::Dot => "<.>".into(),
        Tok::Nil => "<nil>".into(),
        other => {
            let val = tok_text(other);
            match val.char_indices().nth(10) {
                Some((at, _)) => format!("{}...", super::value::go_quote(&val[..at])),
                None => super::value::go_quote(&val),
            }
        }
    }
}

fn tok_text(t: &Tok) -> String {
    match t {
        Tok::Text(s) => s.clone(),
        Tok::Left => "{{".into(),
        Tok::Right => "}}".into(),
        Tok::Space => " ".into(),
        Tok::Pipe => "|".into(),
        Tok::LParen => "(".into(),
        Tok::RParen => ")".into(),
        Tok::Declare => ":=".into(),
        Tok::Assign => "=".into(),
        Tok::Comma => ",".into(),
        Tok::Str(raw, _) => raw.clone(),
        Tok::Char(raw) | Tok::Number(raw) | Tok::Var(raw) | Tok::Ident(raw) => raw.clone(),
        Tok::Bool(b) => b.to_string(),
        Tok::Nil => "nil".into(),
        Tok::Dot => ".".into(),
        Tok::Field(f) => format!(".{f}"),
        Tok::Keyword(k) => (*k).into(),
        Tok::Punct(c) => c.to_string(),
        Tok::Eof => "EOF".into(),
    }
}
