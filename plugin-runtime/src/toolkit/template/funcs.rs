//! The functions a template can call: the SDK helper's, OpenBao's additions and the
//! text/template built-ins.

use std::fmt::Write as _;

use base64::Engine as _;

use super::exec::State;
use super::value::{self, Value};
use crate::toolkit::gostr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    Int,
    Str,
    Any,
}

impl Ty {
    pub(crate) fn go(self) -> &'static str {
        match self {
            Ty::Int => "int",
            Ty::Str => "string",
            Ty::Any => "interface {}",
        }
    }
}

pub(crate) struct Sig {
    pub(crate) params: &'static [Ty],
    pub(crate) variadic: Option<Ty>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    Random,
    Truncate,
    TruncateSha256,
    Uppercase,
    Lowercase,
    Replace,
    Sha256,
    Base64,
    DecodeBase64,
    Hex,
    DecodeHex,
    Glob,
    UnixTime,
    UnixTimeMillis,
    Timestamp,
    Uuid,
    And,
    Or,
    Not,
    Len,
    Index,
    Slice,
    Print,
    Printf,
    Println,
    Html,
    Js,
    Urlquery,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Call,
}

/// Every function name a template may use.
pub(crate) const NAMES: &[(&str, Func)] = &[
    ("random", Func::Random),
    ("truncate", Func::Truncate),
    ("truncate_sha256", Func::TruncateSha256),
    ("uppercase", Func::Uppercase),
    ("lowercase", Func::Lowercase),
    ("replace", Func::Replace),
    ("sha256", Func::Sha256),
    ("base64", Func::Base64),
    ("decode_base64", Func::DecodeBase64),
    ("hex", Func::Hex),
    ("decode_hex", Func::DecodeHex),
    ("glob", Func::Glob),
    ("unix_time", Func::UnixTime),
    ("unix_time_millis", Func::UnixTimeMillis),
    ("timestamp", Func::Timestamp),
    ("uuid", Func::Uuid),
    ("and", Func::And),
    ("or", Func::Or),
    ("not", Func::Not),
    ("len", Func::Len),
    ("index", Func::Index),
    ("slice", Func::Slice),
    ("print", Func::Print),
    ("printf", Func::Printf),
    ("println", Func::Println),
    ("html", Func::Html),
    ("js", Func::Js),
    ("urlquery", Func::Urlquery),
    ("eq", Func::Eq),
    ("ne", Func::Ne),
    ("lt", Func::Lt),
    ("le", Func::Le),
    ("gt", Func::Gt),
    ("ge", Func::Ge),
    ("call", Func::Call),
];

pub(crate) fn lookup(name: &str) -> Option<Func> {
    NAMES.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

impl Func {
    pub(crate) fn sig(self) -> Sig {
        use Ty::*;
        let (params, variadic): (&'static [Ty], Option<Ty>) = match self {
            Func::Random => (&[Int], None),
            Func::Truncate | Func::TruncateSha256 => (&[Int, Str], None),
            Func::Uppercase
            | Func::Lowercase
            | Func::Sha256
            | Func::Base64
            | Func::DecodeBase64
            | Func::Hex
            | Func::DecodeHex
            | Func::Timestamp => (&[Str], None),
            Func::Replace => (&[Str, Str, Str], None),
            Func::Glob => (&[Str, Str], None),
            Func::UnixTime | Func::UnixTimeMillis | Func::Uuid => (&[], None),
            Func::And | Func::Or | Func::Index | Func::Slice | Func::Call | Func::Eq => {
                (&[Any], Some(Any))
            }
            Func::Not | Func::Len => (&[Any], None),
            Func::Print | Func::Println | Func::Html | Func::Js | Func::Urlquery => {
                (&[], Some(Any))
            }
            Func::Printf => (&[Str], Some(Any)),
            Func::Ne | Func::Lt | Func::Le | Func::Gt | Func::Ge => (&[Any, Any], None),
        };
        Sig { params, variadic }
    }
}

fn s(v: &Value) -> &[u8] {
    match v {
        Value::Str(s) => s,
        _ => b"",
    }
}

fn i(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        _ => 0,
    }
}

/// `hex(sha256(s))`.
pub(crate) fn sha256_hex(s: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, s);
    hex_encode(d.as_ref())
}

pub(crate) fn hex_encode(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(out, "{x:02x}");
    }
    out
}

fn hex_decode(b: &[u8]) -> Result<Vec<u8>, String> {
    let val = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len() / 2);
    let mut i = 0;
    while i + 1 < b.len() {
        let (Some(h), Some(l)) = (val(b[i]), val(b[i + 1])) else {
            let bad = if val(b[i]).is_none() { b[i] } else { b[i + 1] };
            return Err(format!("encoding/hex: invalid byte: {}", go_byte_rune(bad)));
        };
        out.push(h << 4 | l);
        i += 2;
    }
    if b.len() % 2 == 1 {
        if val(b[i]).is_none() {
            return Err(format!(
                "encoding/hex: invalid byte: {}",
                go_byte_rune(b[i])
            ));
        }
        return Err("encoding/hex: odd length hex string".into());
    }
    Ok(out)
}

fn go_byte_rune(b: u8) -> String {
    format!(
        "U+{:04X} {}",
        b,
        value::go_quote(&(b as char).to_string()).replace('"', "'")
    )
}

/// ryanuber/go-glob: `*` matches any run of characters; nothing else is special.
pub(crate) fn glob(pattern: &[u8], subject: &[u8]) -> bool {
    if pattern.is_empty() {
        return subject.is_empty();
    }
    if pattern == b"*" {
        return true;
    }
    let parts: Vec<&[u8]> = pattern.split(|b| *b == b'*').collect();
    if parts.len() == 1 {
        return subject == pattern;
    }
    let leading = pattern.starts_with(b"*");
    let trailing = pattern.ends_with(b"*");
    let end = parts.len() - 1;
    let mut subj = subject;
    for (i, part) in parts[..end].iter().enumerate() {
        let idx = gostr::find(subj, part);
        match (i, idx) {
            (0, Some(0)) => {}
            (0, _) if !leading => return false,
            (_, None) => return false,
            _ => {}
        }
        // Go slices from idx (−1 when absent, which can only happen for a leading glob's
        // empty first part, never reached since "" is always found).
        let at = idx.unwrap_or(0);
        subj = &subj[at + part.len()..];
    }
    trailing || subj.ends_with(parts[end])
}

fn truncate(max: i64, s: &[u8]) -> Result<Vec<u8>, String> {
    if max <= 0 {
        return Err(format!("max length must be > 0 but was {max}"));
    }
    Ok(s[..s.len().min(max as usize)].to_vec())
}

fn truncate_sha256(max: i64, s: &[u8]) -> Result<Vec<u8>, String> {
    if max <= 8 {
        return Err(format!("max length must be > 8 but was {max}"));
    }
    let max = max as usize;
    if s.len() <= max {
        return Ok(s.to_vec());
    }
    // Go slices bytes: the head and the hashed tail split at a byte offset.
    let cut = max - 8;
    let d = ring::digest::digest(&ring::digest::SHA256, &s[cut..]);
    let mut out = s[..cut].to_vec();
    out.extend_from_slice(&hex_encode(d.as_ref()).as_bytes()[..8]);
    Ok(out)
}

/// Go's `base64.StdEncoding.EncodeToString`.
pub(crate) fn base64_std(s: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Go's `template.HTMLEscapeString`: byte by byte, other bytes kept as they are.
fn html_escape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    for &b in s {
        match b {
            0 => out.extend_from_slice("\u{FFFD}".as_bytes()),
            b'"' => out.extend_from_slice(b"&#34;"),
            b'\'' => out.extend_from_slice(b"&#39;"),
            b'&' => out.extend_from_slice(b"&amp;"),
            b'<' => out.extend_from_slice(b"&lt;"),
            b'>' => out.extend_from_slice(b"&gt;"),
            b => out.push(b),
        }
    }
    out
}

/// Go's `template.JSEscapeString`: an invalid byte decodes as U+FFFD, which is printable,
/// so it is kept as it is.
fn js_escape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    for (at, w, c) in gostr::runes(s) {
        match c {
            '\\' => out.extend_from_slice(b"\\\\"),
            '\'' => out.extend_from_slice(b"\\'"),
            '"' => out.extend_from_slice(b"\\\""),
            '<' => out.extend_from_slice(b"\\u003C"),
            '>' => out.extend_from_slice(b"\\u003E"),
            '&' => out.extend_from_slice(b"\\u0026"),
            '=' => out.extend_from_slice(b"\\u003D"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u00{:02X}", c as u32).as_bytes());
            }
            c if (c as u32) < 0x80 || value::is_go_printable(c) => {
                out.extend_from_slice(&s[at..at + w]);
            }
            c => out.extend_from_slice(format!("\\u{:04X}", c as u32).as_bytes()),
        }
    }
    out
}

/// Go's `url.QueryEscape`.
pub(crate) fn query_escape(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

fn eval_args(args: &[Value], st: &State<'_>) -> Vec<u8> {
    if let [Value::Str(s)] = args {
        return s.clone();
    }
    value::sprint(args, &|| st.data.display())
}

#[derive(PartialEq, PartialOrd)]
enum Basic<'v> {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'v [u8]),
}

fn basic(v: &Value) -> Result<Basic<'_>, String> {
    match v {
        Value::Bool(b) => Ok(Basic::Bool(*b)),
        Value::Int(i) => Ok(Basic::Int(*i)),
        Value::Float(f) => Ok(Basic::Float(*f)),
        Value::Str(s) => Ok(Basic::Str(s)),
        _ => Err("invalid type for comparison".into()),
    }
}

fn same_kind(a: &Basic<'_>, b: &Basic<'_>) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

fn eq(a: &Value, b: &Value) -> Result<bool, String> {
    if matches!(a, Value::Nil | Value::NoValue) || matches!(b, Value::Nil | Value::NoValue) {
        return Ok(
            matches!(a, Value::Nil | Value::NoValue) && matches!(b, Value::Nil | Value::NoValue)
        );
    }
    let (x, y) = (basic(a)?, basic(b)?);
    if !same_kind(&x, &y) {
        return Err("incompatible types for comparison".into());
    }
    Ok(x == y)
}

fn lt(a: &Value, b: &Value) -> Result<bool, String> {
    let (x, y) = (basic(a)?, basic(b)?);
    if matches!(x, Basic::Bool(_)) || matches!(y, Basic::Bool(_)) {
        return Err("invalid type for comparison".into());
    }
    if !same_kind(&x, &y) {
        return Err("incompatible types for comparison".into());
    }
    Ok(x < y)
}

pub(crate) fn call(f: Func, a: &[Value], st: &State<'_>) -> Result<Value, String> {
    let str_ = |v: String| Ok(Value::Str(v.into_bytes()));
    let bytes_ = |v: Vec<u8>| Ok(Value::Str(v));
    match f {
        Func::Random => {
            let n = i(&a[0]);
            if n < 0 {
                return Err("runtime error: makeslice: cap out of range".into());
            }
            if n > 1 << 20 {
                return Err(format!("random length {n} is too large"));
            }
            str_(st.env.random(n as usize))
        }
        Func::Truncate => truncate(i(&a[0]), s(&a[1])).map(Value::Str),
        Func::TruncateSha256 => truncate_sha256(i(&a[0]), s(&a[1])).map(Value::Str),
        Func::Uppercase => bytes_(gostr::to_upper_bytes(s(&a[0]))),
        Func::Lowercase => bytes_(gostr::to_lower_bytes(s(&a[0]))),
        Func::Replace => bytes_(gostr::replace_all_bytes(s(&a[2]), s(&a[0]), s(&a[1]))),
        Func::Sha256 => str_(sha256_hex(s(&a[0]))),
        Func::Base64 => str_(base64_std(s(&a[0]))),
        Func::DecodeBase64 => {
            crate::toolkit::statements::go_std_base64_decode_strict(s(&a[0])).map(Value::Str)
        }
        Func::Hex => str_(hex_encode(s(&a[0]))),
        Func::DecodeHex => hex_decode(s(&a[0])).map(Value::Str),
        Func::Glob => Ok(Value::Bool(glob(s(&a[0]), s(&a[1])))),
        Func::UnixTime => str_(st.env.now().unix_timestamp().to_string()),
        Func::UnixTimeMillis => str_((st.env.now().unix_timestamp_nanos() / 1_000_000).to_string()),
        Func::Timestamp => bytes_(timestamp(&st.env.now(), s(&a[0]))),
        Func::Uuid => str_(st.env.uuid()),
        Func::And | Func::Or => unreachable!("handled by the evaluator"),
        Func::Not => Ok(Value::Bool(!a[0].truth())),
        Func::Len => match &a[0] {
            Value::Str(x) => Ok(Value::Int(x.len() as i64)),
            other => Err(format!(
                "len of type {}",
                other.go_type(st.data.type_name())
            )),
        },
        Func::Index => {
            let mut cur = a[0].clone();
            for idx in &a[1..] {
                let Value::Str(x) = &cur else {
                    return Err(format!(
                        "can't index item of type {}",
                        cur.go_type(st.data.type_name())
                    ));
                };
                let Value::Int(k) = idx else {
                    return Err(format!(
                        "cannot index slice/array with type {}",
                        idx.go_type(st.data.type_name())
                    ));
                };
                if *k < 0 || *k as usize >= x.len() {
                    return Err(format!("index out of range: {k}"));
                }
                cur = Value::Int(i64::from(x[*k as usize]));
            }
            Ok(cur)
        }
        Func::Slice => {
            let Value::Str(x) = &a[0] else {
                return Err(format!(
                    "can't slice item of type {}",
                    a[0].go_type(st.data.type_name())
                ));
            };
            if a.len() > 3 {
                return Err(format!("too many slice indexes: {}", a.len() - 1));
            }
            if a.len() == 4 {
                return Err("cannot 3-index slice a string".into());
            }
            let mut idx = [0usize, x.len()];
            for (k, v) in a[1..].iter().enumerate() {
                let Value::Int(n) = v else {
                    return Err(format!(
                        "cannot index slice/array with type {}",
                        v.go_type(st.data.type_name())
                    ));
                };
                if *n < 0 || *n as usize > x.len() {
                    return Err(format!("index out of range: {n}"));
                }
                idx[k] = *n as usize;
            }
            if idx[0] > idx[1] {
                return Err(format!("invalid slice index: {} > {}", idx[0], idx[1]));
            }
            bytes_(x[idx[0]..idx[1]].to_vec())
        }
        Func::Print => bytes_(value::sprint(a, &|| st.data.display())),
        Func::Println => bytes_(value::sprintln(a, &|| st.data.display())),
        Func::Printf => bytes_(value::sprintf(
            s(&a[0]),
            &a[1..],
            st.data.type_name(),
            &|| st.data.display(),
        )),
        Func::Html => bytes_(html_escape(&eval_args(a, st))),
        Func::Js => bytes_(js_escape(&eval_args(a, st))),
        Func::Urlquery => str_(query_escape(&eval_args(a, st))),
        Func::Eq => {
            if a.len() == 1 {
                return Err("missing argument for comparison".into());
            }
            for b in &a[1..] {
                if eq(&a[0], b)? {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        Func::Ne => eq(&a[0], &a[1]).map(|r| Value::Bool(!r)),
        Func::Lt => lt(&a[0], &a[1]).map(Value::Bool),
        Func::Le => Ok(Value::Bool(lt(&a[0], &a[1])? || eq(&a[0], &a[1])?)),
        Func::Gt => Ok(Value::Bool(!(lt(&a[0], &a[1])? || eq(&a[0], &a[1])?))),
        Func::Ge => lt(&a[0], &a[1]).map(|r| Value::Bool(!r)),
        Func::Call => Err(format!(
            "non-function of type {}",
            a[0].go_type(st.data.type_name())
        )),
    }
}

/// `time.Format` with a layout that may hold invalid UTF-8: layout elements are ASCII, so
/// the valid runs are formatted and stray bytes copied, as Go copies them.
fn timestamp(now: &time::OffsetDateTime, layout: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in layout.utf8_chunks() {
        if !chunk.valid().is_empty() {
            out.extend_from_slice(crate::toolkit::gotime::format(now, chunk.valid()).as_bytes());
        }
        out.extend_from_slice(chunk.invalid());
    }
    out
}
