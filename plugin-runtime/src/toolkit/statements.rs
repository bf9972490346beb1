//! Statement handling as the SDK's SQL plugins do it: placeholders, splitting, quoting, the
//! expiration format.
//!
//! ```
//! use dbplugin::toolkit::statements::{self, Placeholders};
//!
//! // One role statement may hold several SQL statements separated by `;`.
//! let command = r#"CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}';
//!                  GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{{name}}";"#;
//! let values = Placeholders::new().name("v-app-x1").password("s3cr3t");
//! let queries: Vec<String> = statements::split(command)
//!     .iter()
//!     .map(|q| values.apply(q))
//!     .collect();
//! assert_eq!(queries, [
//!     r#"CREATE ROLE "v-app-x1" WITH LOGIN PASSWORD 's3cr3t'"#,
//!     r#"GRANT SELECT ON ALL TABLES IN SCHEMA public TO "v-app-x1""#,
//! ]);
//! assert_eq!(statements::quote_identifier(r#"we"ird"#), r#""we""ird""#);
//! ```
//!
//! # Semantics
//!
//! - [`Placeholders::apply`] / [`substitute`]: every `{{key}}` (exact text, no spaces) is
//!   replaced by its value; unknown placeholders stay. Substitution is a **single pass**: a
//!   value that itself contains `{{password}}` is never expanded again. The SDK's
//!   `dbutil.QueryHelper` replaces key by key in random map order, so it agrees with this
//!   whenever its own result does not depend on that order.
//! - [`parse_arbitrary_string_slice`] is `strutil.ParseArbitraryStringSlice`: the whole
//!   command may be base64 (standard alphabet, padded; CR and LF ignored) and/or a JSON
//!   array of strings; otherwise it is split on the separator. [`split`] adds what the
//!   built-in plugins do next: trim every piece and drop the empty ones.
//! - [`split_postgres`] adds OpenBao PostgreSQL's rule for `DO` blocks and functions: a
//!   command containing the word `END` outside quotes is run unsplit.

use std::time::SystemTime;

use base64::Engine as _;
use time::OffsetDateTime;

use crate::Secret;

/// The Go layout of the `{{expiration}}` value: `2006-01-02 15:04:05-0700`.
pub const EXPIRATION_LAYOUT: &str = "2006-01-02 15:04:05-0700";

/// The default renewal statement of the PostgreSQL plugin.
pub const POSTGRES_DEFAULT_RENEW: &str = r#"ALTER ROLE "{{name}}" VALID UNTIL '{{expiration}}';"#;
/// The default password-rotation statement of the PostgreSQL plugin.
pub const POSTGRES_DEFAULT_ROTATE: &str =
    r#"ALTER ROLE "{{username}}" WITH PASSWORD '{{password}}';"#;
/// The default password-rotation statement of the MySQL plugin.
pub const MYSQL_DEFAULT_ROTATE: &str =
    r#"ALTER USER '{{username}}'@'%' IDENTIFIED BY '{{password}}';"#;

/// Formats an expiration as the SQL plugins do (`2024-05-01 13:04:05+0000`), in the
/// offset `t` carries; the host sends UTC.
///
/// ```
/// use dbplugin::time::macros::datetime;
/// use dbplugin::toolkit::statements::format_expiration;
///
/// assert_eq!(format_expiration(datetime!(2024-05-01 13:04:05 UTC)), "2024-05-01 13:04:05+0000");
/// ```
pub fn format_expiration(t: OffsetDateTime) -> String {
    format_time(&t, EXPIRATION_LAYOUT)
}

/// [`format_expiration`] for a `SystemTime` (as found in the runtime's requests), in UTC.
pub fn format_expiration_system(t: SystemTime) -> String {
    format_expiration(OffsetDateTime::from(t))
}

/// Formats `t` with a Go `time.Format` layout such as `2006-01-02T15:04:05Z07:00`.
///
/// `MST` prints `UTC` at offset zero and the numeric offset otherwise.
///
/// ```
/// use dbplugin::time::macros::datetime;
/// use dbplugin::toolkit::statements::format_time;
///
/// let t = datetime!(2024-02-03 04:05:06.789 +01:00);
/// assert_eq!(format_time(&t, "Mon Jan _2 3:04PM .000 Z07:00"), "Sat Feb  3 4:05AM .789 +01:00");
/// ```
pub fn format_time(t: &OffsetDateTime, layout: &str) -> String {
    super::gotime::format(t, layout)
}

/// Replaces each `{{key}}` by its value in one pass; see the module docs.
///
/// ```
/// use dbplugin::toolkit::statements::substitute;
///
/// let out = substitute("{{name}} {{ name }} {{other}}", &[("name", "bob")]);
/// assert_eq!(out, "bob {{ name }} {{other}}");
/// ```
pub fn substitute(template: &str, values: &[(&str, &str)]) -> String {
    if values.is_empty() || !template.contains("{{") {
        return template.to_owned();
    }
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let tail = &rest[start + 2..];
        let hit = values.iter().find(|(k, _)| {
            tail.len() >= k.len() + 2 && tail.starts_with(*k) && tail[k.len()..].starts_with("}}")
        });
        match hit {
            Some((k, v)) => {
                out.push_str(v);
                rest = &tail[k.len() + 2..];
            }
            None => {
                out.push('{');
                rest = &rest[start + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The values of the standard placeholders (`{{name}}`, `{{username}}`, `{{password}}`,
/// `{{expiration}}`, `{{public_key}}`) plus any of your own.
///
/// `Debug` never shows the values.
#[derive(Clone, Default)]
pub struct Placeholders {
    values: Vec<(String, Secret)>,
}

impl std::fmt::Debug for Placeholders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.values.iter().map(|(k, _)| k))
            .finish()
    }
}

impl Placeholders {
    /// No values.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `{{key}}` (replacing an earlier value for the same key).
    #[must_use]
    pub fn set(mut self, key: impl Into<String>, value: impl Into<Secret>) -> Self {
        let key = key.into();
        let value = value.into();
        match self.values.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.values.push((key, value)),
        }
        self
    }

    /// Sets both `{{name}}` and `{{username}}`, as the v5 built-ins do.
    #[must_use]
    pub fn name(self, username: &str) -> Self {
        self.set("name", username).set("username", username)
    }

    /// Sets `{{password}}`.
    #[must_use]
    pub fn password(self, password: impl Into<Secret>) -> Self {
        self.set("password", password)
    }

    /// Sets `{{expiration}}` to `t` in [`EXPIRATION_LAYOUT`].
    #[must_use]
    pub fn expiration(self, t: OffsetDateTime) -> Self {
        self.set("expiration", format_expiration(t))
    }

    /// Sets `{{public_key}}`.
    #[must_use]
    pub fn public_key(self, key: &str) -> Self {
        self.set("public_key", key)
    }

    /// Substitutes the placeholders in `statement` (single pass; unknown ones stay).
    pub fn apply(&self, statement: &str) -> String {
        let pairs: Vec<(&str, &str)> = self
            .values
            .iter()
            .map(|(k, v)| (k.as_str(), v.expose()))
            .collect();
        substitute(statement, &pairs)
    }
}

fn is_go_space(c: char) -> bool {
    // Go's strings.TrimSpace: Unicode White_Space.
    c.is_whitespace()
}

pub(crate) fn go_trim(s: &str) -> &str {
    s.trim_matches(is_go_space)
}

/// Go's `base64.StdEncoding.DecodeString`: padded standard alphabet, `\r` and `\n` ignored.
pub(crate) fn go_std_base64_decode(s: &[u8]) -> Option<Vec<u8>> {
    let cleaned: Vec<u8> = s
        .iter()
        .copied()
        .filter(|b| *b != b'\r' && *b != b'\n')
        .collect();
    GO_STD.decode(cleaned).ok()
}

/// [`go_std_base64_decode`] with an error naming the offending input byte, like Go's.
pub(crate) fn go_std_base64_decode_strict(s: &[u8]) -> Result<Vec<u8>, String> {
    go_std_base64_decode(s).ok_or_else(|| {
        let bad = s
            .iter()
            .position(|&b| !(b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'='))
            .unwrap_or(s.len());
        format!("illegal base64 data at input byte {bad}")
    })
}

/// Go's `StdEncoding` decoder is lenient about non-zero trailing bits.
const GO_STD: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireCanonical),
);

/// `strutil.ParseArbitraryStringSlice`, exactly: the pieces are trimmed but empty ones are
/// kept (a JSON array is returned as is).
///
/// ```
/// use dbplugin::toolkit::statements::parse_arbitrary_string_slice;
///
/// assert_eq!(parse_arbitrary_string_slice(" a ; ;b ", ";"), ["a", "", "b"]);
/// assert_eq!(parse_arbitrary_string_slice(r#"["x;y", " z "]"#, ";"), ["x;y", " z "]);
/// // base64 of `a;b`
/// assert_eq!(parse_arbitrary_string_slice("YTti", ";"), ["a", "b"]);
/// ```
///
/// A command that happens to be valid base64 is decoded, as in Go, whatever it decodes to;
/// where that is not UTF-8, each stray byte becomes U+FFFD here
/// ([`parse_arbitrary_string_slice_bytes`] keeps Go's bytes).
pub fn parse_arbitrary_string_slice(input: &str, sep: &str) -> Vec<String> {
    parse_arbitrary_string_slice_bytes(input, sep)
        .iter()
        .map(|b| super::gostr::lossy_per_byte(b))
        .collect()
}

/// [`parse_arbitrary_string_slice`] with Go's exact bytes.
///
/// ```
/// use dbplugin::toolkit::statements::parse_arbitrary_string_slice_bytes;
///
/// // "ABCD" is valid base64, so Go runs the three bytes it encodes, not "ABCD".
/// assert_eq!(parse_arbitrary_string_slice_bytes("ABCD", ";"), [b"\x00\x10\x83".to_vec()]);
/// ```
pub fn parse_arbitrary_string_slice_bytes(input: &str, sep: &str) -> Vec<Vec<u8>> {
    let input = go_trim(input);
    if input.is_empty() {
        return Vec::new();
    }
    let text = go_std_base64_decode(input.as_bytes()).unwrap_or_else(|| input.as_bytes().to_vec());
    // Go's JSON decoder turns each invalid byte inside a string into U+FFFD; outside
    // strings it is a syntax error either way.
    if let Some(list) = json_string_array(&super::gostr::lossy_per_byte(&text)) {
        return list.into_iter().map(String::into_bytes).collect();
    }
    parse_string_slice(&text, sep.as_bytes())
}

/// `json.Unmarshal` into `[]string`: an array of strings, or `null` (→ empty).
fn json_string_array(text: &str) -> Option<Vec<String>> {
    match serde_json::from_str::<Option<Vec<String>>>(text) {
        Ok(v) => Some(v.unwrap_or_default()),
        // Go decodes unpaired surrogate escapes as U+FFFD where serde_json refuses them.
        Err(_) if text.contains("\\u") || text.contains("\\U") => {
            let fixed = replace_lone_surrogates(text)?;
            serde_json::from_str::<Option<Vec<String>>>(&fixed)
                .ok()
                .map(Option::unwrap_or_default)
        }
        Err(_) => None,
    }
}

/// Rewrites `\uD800`–`\uDFFF` escapes that do not form a pair into `\uFFFD`.
fn replace_lone_surrogates(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let esc = |i: usize| -> Option<u32> {
        if b.get(i) == Some(&b'\\') && b.get(i + 1) == Some(&b'u') && i + 6 <= b.len() {
            u32::from_str_radix(std::str::from_utf8(&b[i + 2..i + 6]).ok()?, 16).ok()
        } else {
            None
        }
    };
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut last = 0;
    let mut changed = false;
    while i < b.len() {
        if b[i] == b'\\' {
            if let Some(u) = esc(i) {
                let paired = (0xD800..0xDC00).contains(&u)
                    && esc(i + 6).is_some_and(|l| (0xDC00..0xE000).contains(&l));
                if paired {
                    i += 12;
                    continue;
                }
                if (0xD800..0xE000).contains(&u) {
                    out.push_str(&text[last..i]);
                    out.push_str("\\uFFFD");
                    changed = true;
                    i += 6;
                    last = i;
                    continue;
                }
            }
            i += 2;
            continue;
        }
        i += 1;
    }
    out.push_str(&text[last..]);
    changed.then_some(out)
}

/// `strutil.ParseStringSlice`: trim, split on `sep`, trim each piece.
fn parse_string_slice(input: &[u8], sep: &[u8]) -> Vec<Vec<u8>> {
    let input = go_trim_bytes(input);
    if input.is_empty() {
        return Vec::new();
    }
    if sep.is_empty() {
        // Go's strings.Split with an empty separator splits into UTF-8 sequences (an
        // invalid byte on its own).
        return super::gostr::runes(input)
            .map(|(at, w, _)| go_trim_bytes(&input[at..at + w]).to_vec())
            .collect();
    }
    let mut out = Vec::new();
    let mut rest = input;
    while let Some(i) = super::gostr::find(rest, sep) {
        out.push(go_trim_bytes(&rest[..i]).to_vec());
        rest = &rest[i + sep.len()..];
    }
    out.push(go_trim_bytes(rest).to_vec());
    out
}

/// `strings.TrimSpace` of a Go string (invalid bytes are not space).
fn go_trim_bytes(b: &[u8]) -> &[u8] {
    let mut first = None;
    let mut end = 0;
    for (at, w, c) in super::gostr::runes(b) {
        if (c == '\u{FFFD}' && w == 1) || !is_go_space(c) {
            first.get_or_insert(at);
            end = at + w;
        }
    }
    match first {
        Some(start) => &b[start..end],
        None => &b[..0],
    }
}

/// Splits one role statement into the queries to run, as the SQL built-ins do:
/// [`parse_arbitrary_string_slice`] on `;`, then trim each piece and drop empty ones.
pub fn split(command: &str) -> Vec<String> {
    parse_arbitrary_string_slice(command, ";")
        .into_iter()
        .map(|s| go_trim(&s).to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// [`split`], except that a command for which [`contains_end_block`] holds is returned whole
/// (OpenBao PostgreSQL's handling of creation and custom revocation statements).
///
/// ```
/// use dbplugin::toolkit::statements::split_postgres;
///
/// let block = "DO $$ BEGIN CREATE ROLE x; END $$;";
/// assert_eq!(split_postgres(block), [block]);
/// assert_eq!(split_postgres("SELECT 'END'; SELECT 2"), ["SELECT 'END'", "SELECT 2"]);
/// ```
pub fn split_postgres(command: &str) -> Vec<String> {
    if contains_end_block(command) {
        vec![command.to_owned()]
    } else {
        split(command)
    }
}

/// Whether `command` contains the word `END` (upper case, ASCII word boundaries) once quoted
/// text is disregarded, as OpenBao's PostgreSQL plugin decides it.
///
/// Parity note: upstream collects every `"…"` and then every `'…'` (non-greedy, not across
/// lines), but because of how its loop is written only the **last** collected literal is
/// actually removed before the search. This function reproduces that exactly, so
/// `"END" 'x'` still counts as containing `END`.
pub fn contains_end_block(command: &str) -> bool {
    let mut literals = quoted_phrases(command, b'"');
    literals.extend(quoted_phrases(command, b'\''));
    let stripped = match literals.last() {
        Some(last) => command.replace(last.as_str(), ""),
        None => command.to_owned(),
    };
    has_word_end(stripped.as_bytes())
}

fn quoted_phrases(s: &str, q: u8) -> Vec<String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == q {
            let mut j = i + 1;
            while j < b.len() && b[j] != q && b[j] != b'\n' {
                j += 1;
            }
            if j < b.len() && b[j] == q {
                out.push(s[i..=j].to_owned());
                i = j + 1;
                continue;
            }
        }
        i += 1;
    }
    out
}

fn has_word_end(b: &[u8]) -> bool {
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    b.windows(3).enumerate().any(|(i, w)| {
        w == b"END" && (i == 0 || !word(b[i - 1])) && (i + 3 == b.len() || !word(b[i + 3]))
    })
}

/// `dbutil.QuoteIdentifier`: cut at the first NUL, double every `"`, wrap in `"…"`.
pub fn quote_identifier(name: &str) -> String {
    let name = name.split('\0').next().unwrap_or("");
    format!("\"{}\"", name.replace('"', "\"\""))
}
