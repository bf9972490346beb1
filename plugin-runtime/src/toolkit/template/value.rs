//! Values flowing through a template, and Go's `fmt` formatting of them.

use std::fmt::Write as _;

use crate::toolkit::gostr;

/// A value inside a template: what a field, literal or function produces.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// A Go string: bytes, usually UTF-8 (`truncate` can cut a character, `"\xff"` is one
    /// byte).
    Str(Vec<u8>),
    /// A Go `int`.
    Int(i64),
    /// A Go `float64`.
    Float(f64),
    /// A Go `bool`.
    Bool(bool),
    /// `nil`.
    Nil,
    /// A missing map entry (prints `<no value>`).
    NoValue,
    /// The template's data (the value of `$`).
    Data,
}

impl Value {
    pub(crate) fn go_type(&self, data_type: &str) -> String {
        match self {
            Value::Str(_) => "string".into(),
            Value::Int(_) => "int".into(),
            Value::Float(_) => "float64".into(),
            Value::Bool(_) => "bool".into(),
            Value::Nil | Value::NoValue => "<nil>".into(),
            Value::Data => data_type.into(),
        }
    }

    pub(crate) fn truth(&self) -> bool {
        match self {
            Value::Str(s) => !s.is_empty(),
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Bool(b) => *b,
            Value::Nil | Value::NoValue => false,
            Value::Data => true,
        }
    }
}

/// Go's `%v` of a float64 (`strconv.FormatFloat(f, 'g', -1, 64)`).
pub(crate) fn go_float_g(f: f64, prec: Option<usize>, upper: bool) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let (neg, digits, dp) = decimal_digits(f, prec.map(|p| p.max(1)));
    let nd = digits.len() as i64;
    let mut eprec = match prec {
        None => 6,
        Some(p) => p.max(1) as i64,
    };
    if prec.is_some() && eprec > nd && nd >= dp {
        eprec = nd;
    }
    let exp = dp - 1;
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if exp < -4 || exp >= eprec {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push(if upper { 'E' } else { 'e' });
        out.push(if exp < 0 { '-' } else { '+' });
        let _ = write!(out, "{:02}", exp.abs());
    } else if dp <= 0 {
        out.push_str("0.");
        for _ in 0..-dp {
            out.push('0');
        }
        out.push_str(&digits);
    } else if dp >= nd {
        out.push_str(&digits);
        for _ in 0..dp - nd {
            out.push('0');
        }
    } else {
        out.push_str(&digits[..dp as usize]);
        out.push('.');
        out.push_str(&digits[dp as usize..]);
    }
    out
}

/// Decimal digits (no trailing zeros) and decimal-point position of |f|: shortest round-trip
/// when `sig` is None, else rounded to `sig` significant digits.
fn decimal_digits(f: f64, sig: Option<usize>) -> (bool, String, i64) {
    let neg = f.is_sign_negative() && f != 0.0;
    let a = f.abs();
    if a == 0.0 {
        return (neg, "0".into(), 1);
    }
    let s = match sig {
        None => format!("{a:e}"),
        Some(p) => format!("{:.*e}", p - 1, a),
    };
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let mut digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    (neg, digits, exp + 1)
}

/// Go's `%e` with a precision.
fn go_float_e(f: f64, prec: usize, upper: bool) -> String {
    let s = format!("{:.*e}", prec, f);
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    format!(
        "{mant}{}{}{:02}",
        if upper { 'E' } else { 'e' },
        if exp < 0 { '-' } else { '+' },
        exp.abs()
    )
}

/// `fmt.Sprint` of one value with `%v`.
pub(crate) fn print_value(v: &Value, data: &dyn Fn() -> String) -> Vec<u8> {
    match v {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string().into_bytes(),
        Value::Float(f) => go_float_g(*f, None, false).into_bytes(),
        Value::Bool(b) => b.to_string().into_bytes(),
        Value::Nil => b"<nil>".to_vec(),
        Value::NoValue => b"<no value>".to_vec(),
        Value::Data => data().into_bytes(),
    }
}

/// [`print_value`] for a message: invalid UTF-8 shown as U+FFFD.
pub(crate) fn print_text(v: &Value, data: &dyn Fn() -> String) -> String {
    gostr::lossy_per_byte(&print_value(v, data))
}

/// `fmt.Sprint(args...)`: spaces between operands when neither is a string.
pub(crate) fn sprint(args: &[Value], data: &dyn Fn() -> String) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !matches!(a, Value::Str(_)) && !matches!(args[i - 1], Value::Str(_)) {
            out.push(b' ');
        }
        out.extend_from_slice(&print_value(a, data));
    }
    out
}

/// `fmt.Sprintln(args...)`.
pub(crate) fn sprintln(args: &[Value], data: &dyn Fn() -> String) -> Vec<u8> {
    let mut out = args
        .iter()
        .map(|a| print_value(a, data))
        .collect::<Vec<_>>()
        .join(&b' ');
    out.push(b'\n');
    out
}

/// Go's `strconv.Quote`.
pub(crate) fn go_quote(s: &str) -> String {
    go_quote_bytes(s.as_bytes())
}

/// Go's `strconv.Quote` of a Go string (an invalid byte is `\xNN`).
pub(crate) fn go_quote_bytes(s: &[u8]) -> String {
    let mut out = String::from("\"");
    for (at, w, c) in gostr::runes(s) {
        if c == '\u{FFFD}' && w == 1 {
            let _ = write!(out, "\\x{:02x}", s[at]);
            continue;
        }
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_go_printable(c) => out.push(c),
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// Approximates Go's `unicode.IsPrint` (letters, marks, numbers, punctuation, symbols and
/// the ASCII space).
pub(crate) fn is_go_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let u = c as u32;
    // Format characters, surrogates, private use and noncharacters.
    !matches!(u, 0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x180E | 0x200B..=0x200F
        | 0x202A..=0x202E | 0x2060..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB | 0xE000..=0xF8FF
        | 0xFDD0..=0xFDEF | 0xFFFE | 0xFFFF | 0xF0000.. )
}

#[derive(Clone, Copy)]
struct Spec {
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

fn pad(s: String, spec: &Spec, numeric: bool) -> Vec<u8> {
    pad_bytes(s.into_bytes(), spec, numeric)
}

/// Go's `fmt` padding: the width counts runes (an invalid byte is one).
fn pad_bytes(s: Vec<u8>, spec: &Spec, numeric: bool) -> Vec<u8> {
    let Some(w) = spec.width else { return s };
    let n = gostr::rune_count(&s);
    if n >= w {
        return s;
    }
    let fill = w - n;
    let mut out = Vec::with_capacity(s.len() + fill);
    if spec.minus {
        out.extend_from_slice(&s);
        out.resize(s.len() + fill, b' ');
        return out;
    }
    if spec.zero {
        if numeric && matches!(s.first(), Some(b'-' | b'+' | b' ')) {
            out.push(s[0]);
            out.resize(1 + fill, b'0');
            out.extend_from_slice(&s[1..]);
            return out;
        }
        out.resize(fill, b'0');
    } else {
        out.resize(fill, b' ');
    }
    out.extend_from_slice(&s);
    out
}

fn fmt_int(i: i64, verb: char, spec: &Spec) -> Vec<u8> {
    let mut digits = match verb {
        'd' | 'v' => i.unsigned_abs().to_string(),
        'x' => format!("{:x}", i.unsigned_abs()),
        'X' => format!("{:X}", i.unsigned_abs()),
        'o' | 'O' => format!("{:o}", i.unsigned_abs()),
        'b' => format!("{:b}", i.unsigned_abs()),
        _ => unreachable!(),
    };
    if let Some(p) = spec.prec {
        if p == 0 && i == 0 {
            digits.clear();
        }
        while digits.len() < p {
            digits.insert(0, '0');
        }
    }
    let prefix = match verb {
        'x' if spec.sharp => "0x",
        'X' if spec.sharp => "0X",
        'o' if spec.sharp => "0",
        'O' => "0o",
        'b' if spec.sharp => "0b",
        _ => "",
    };
    let sign = if i < 0 {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    };
    let body = format!("{prefix}{digits}");
    if spec.zero && !spec.minus && spec.prec.is_none() {
        if let Some(w) = spec.width {
            let n = sign.len() + body.len();
            if n < w {
                return format!("{sign}{}{body}", "0".repeat(w - n)).into_bytes();
            }
        }
        return format!("{sign}{body}").into_bytes();
    }
    let s = format!("{sign}{body}");
    let no_zero = Spec {
        zero: false,
        ..*spec
    };
    pad(s, &no_zero, true)
}

fn fmt_float(f: f64, verb: char, spec: &Spec) -> Vec<u8> {
    let mut s = match verb {
        'v' | 'g' => go_float_g(f, spec.prec, false),
        'G' => go_float_g(f, spec.prec, true),
        'e' | 'E' => go_float_e(f, spec.prec.unwrap_or(6), verb == 'E'),
        'f' | 'F' => format!("{:.*}", spec.prec.unwrap_or(6), f),
        _ => unreachable!(),
    };
    if spec.plus && !s.starts_with('-') {
        s.insert(0, '+');
    } else if spec.space && !s.starts_with('-') {
        s.insert(0, ' ');
    }
    pad(s, spec, true)
}

fn bad_verb(verb: char, v: &Value, data_type: &str, data: &dyn Fn() -> String) -> Vec<u8> {
    match v {
        Value::Nil | Value::NoValue => format!("%!{verb}(<nil>)").into_bytes(),
        _ => {
            let mut out = format!("%!{verb}({}=", v.go_type(data_type)).into_bytes();
            out.extend_from_slice(&print_value(v, data));
            out.push(b')');
            out
        }
    }
}

/// `%s` of a Go string: a precision keeps that many runes.
fn fmt_str(s: &[u8], spec: &Spec) -> Vec<u8> {
    let s = match spec.prec {
        Some(p) => match gostr::runes(s).nth(p) {
            Some((at, _, _)) => s[..at].to_vec(),
            None => s.to_vec(),
        },
        None => s.to_vec(),
    };
    pad_bytes(s, spec, false)
}

/// Go's `fmt.Sprintf` for the verbs templates use: `%v %s %q %d %x %X %o %O %b %c %U %t
/// %e %E %f %F %g %G %%`, flags `+-# 0`, width and precision (also `*`).
pub(crate) fn sprintf(
    format: &[u8],
    args: &[Value],
    data_type: &str,
    data: &dyn Fn() -> String,
) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::new();
    let mut argi = 0;
    // The format's runes, each with its bytes (copied as they are outside verbs).
    let mut chars = gostr::runes(format)
        .map(|(at, w, c)| (c, &format[at..at + w]))
        .peekable();
    fn num<'f, I: Iterator<Item = (char, &'f [u8])>>(
        chars: &mut std::iter::Peekable<I>,
        argi: &mut usize,
        out: &mut Vec<u8>,
        args: &[Value],
    ) -> Option<usize> {
        if chars.peek().map(|&(c, _)| c) == Some('*') {
            chars.next();
            let v = args.get(*argi);
            *argi += 1;
            return match v {
                Some(Value::Int(i)) if *i >= 0 && *i <= 1_000_000 => Some(*i as usize),
                _ => {
                    out.extend_from_slice(b"%!(BADWIDTH)");
                    None
                }
            };
        }
        let mut n: Option<usize> = None;
        while let Some(d) = chars.peek().and_then(|&(c, _)| c.to_digit(10)) {
            n = Some(n.unwrap_or(0).saturating_mul(10).saturating_add(d as usize));
            chars.next();
        }
        // Go ignores widths and precisions above 10^6.
        n.filter(|v| *v <= 1_000_000)
    }
    while let Some((c, raw)) = chars.next() {
        if c != '%' {
            out.extend_from_slice(raw);
            continue;
        }
        let mut spec = Spec {
            minus: false,
            plus: false,
            sharp: false,
            space: false,
            zero: false,
            width: None,
            prec: None,
        };
        while let Some(&(f, _)) = chars.peek() {
            match f {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '#' => spec.sharp = true,
                ' ' => spec.space = true,
                '0' => spec.zero = !spec.minus,
                _ => break,
            }
            chars.next();
        }
        spec.width = num(&mut chars, &mut argi, &mut out, args);
        if chars.peek().map(|&(c, _)| c) == Some('.') {
            chars.next();
            spec.prec = Some(num(&mut chars, &mut argi, &mut out, args).unwrap_or(0));
        }
        let Some((verb, _)) = chars.next() else {
            out.extend_from_slice(b"%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push(b'%');
            continue;
        }
        let Some(arg) = args.get(argi) else {
            out.extend_from_slice(format!("%!{verb}(MISSING)").as_bytes());
            continue;
        };
        argi += 1;
        let s = match (verb, arg) {
            ('v', Value::Nil | Value::NoValue) => pad("<nil>".into(), &spec, false),
            ('v' | 's', Value::Str(s)) => fmt_str(s, &spec),
            ('q', Value::Str(s)) => pad(go_quote_bytes(s), &spec, false),
            ('x' | 'X', Value::Str(s)) => {
                let mut h = String::new();
                let bytes = match spec.prec {
                    Some(p) => &s[..p.min(s.len())],
                    None => &s[..],
                };
                for (i, b) in bytes.iter().enumerate() {
                    if spec.space && i > 0 {
                        h.push(' ');
                    }
                    if spec.sharp && (spec.space || i == 0) {
                        h.push_str(if verb == 'x' { "0x" } else { "0X" });
                    }
                    if verb == 'x' {
                        let _ = write!(h, "{b:02x}");
                    } else {
                        let _ = write!(h, "{b:02X}");
                    }
                }
                pad(h, &spec, false)
            }
            ('v' | 'd' | 'x' | 'X' | 'o' | 'O' | 'b', Value::Int(i)) => fmt_int(*i, verb, &spec),
            ('c', Value::Int(i)) => pad(
                char::from_u32(*i as u32).unwrap_or('\u{FFFD}').to_string(),
                &spec,
                false,
            ),
            ('q', Value::Int(i)) => {
                let c = char::from_u32(*i as u32).unwrap_or('\u{FFFD}');
                let q = go_quote(&c.to_string());
                let inner = &q[1..q.len() - 1];
                let inner = if c == '"' {
                    "\""
                } else if c == '\'' {
                    "\\'"
                } else {
                    inner
                };
                pad(format!("'{inner}'"), &spec, false)
            }
            ('U', Value::Int(i)) => pad(format!("U+{:04X}", i), &spec, false),
            ('v' | 'e' | 'E' | 'f' | 'F' | 'g' | 'G', Value::Float(f)) => {
                fmt_float(*f, verb, &spec)
            }
            ('v' | 't', Value::Bool(b)) => pad(b.to_string(), &spec, false),
            ('v' | 's', Value::Data) => pad(data(), &spec, false),
            _ => bad_verb(verb, arg, data_type, data),
        };
        out.extend_from_slice(&s);
    }
    if argi < args.len() {
        out.extend_from_slice(b"%!(EXTRA ");
        for (i, a) in args[argi..].iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b", ");
            }
            match a {
                Value::Nil | Value::NoValue => out.extend_from_slice(b"<nil>"),
                _ => {
                    out.extend_from_slice(format!("{}=", a.go_type(data_type)).as_bytes());
                    out.extend_from_slice(&print_value(a, data));
                }
            }
        }
        out.push(b')');
    }
    out
}
