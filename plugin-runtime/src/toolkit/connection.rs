//! The connection settings of the SDK's `connutil` SQL helper: keys, defaults, weak
//! decoding and `connection_url` templating.
//!
//! ```
//! use dbplugin::toolkit::connection::{ConnectionConfig, UrlEscaping};
//!
//! let config = serde_json::json!({
//!     "connection_url": "postgres://{{username}}:{{password}}@db:5432/app",
//!     "username": "vault admin",
//!     "password": "p@ss/word",
//!     "max_open_connections": "8",
//! });
//! let cfg = ConnectionConfig::from_config(config.as_object().unwrap())?;
//! assert_eq!(cfg.max_open_connections, 8);
//! assert_eq!(cfg.max_idle_connections, 8);
//! let url = cfg.render_url(UrlEscaping::Both)?;
//! assert_eq!(url.expose(), "postgres://vault%20admin:p@ss%2Fword@db:5432/app");
//! # Ok::<(), dbplugin::Error>(())
//! ```
//!
//! Embed it in your own configuration with `#[serde(flatten)]`:
//!
//! ```
//! use dbplugin::toolkit::connection::ConnectionConfig;
//!
//! #[derive(serde::Deserialize)]
//! struct MyConfig {
//!     #[serde(flatten)]
//!     connection: ConnectionConfig,
//!     #[serde(default)]
//!     tls_ca: Option<String>,
//! }
//!
//! let c: MyConfig = serde_json::from_value(serde_json::json!({
//!     "connection_url": "x", "max_open_connections": 2, "tls_ca": "pem"
//! })).unwrap();
//! assert_eq!(c.connection.max_open_connections, 2);
//! assert_eq!(c.tls_ca.as_deref(), Some("pem"));
//! ```
//!
//! Values are decoded like `mapstructure.WeakDecode`: `"4"` and `4` (and `4.0`, `true` →
//! 1, `""` → 0, `"0x10"` → 16) for numbers; numbers and booleans for strings (`true` →
//! `"1"`); `1`, `"true"`, `"T"`, … for booleans. Keys match exactly first, then
//! case-insensitively.

use serde::de::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::{ConfigMap, Error, Secret};

/// The default of `max_open_connections` when unset or 0.
pub const DEFAULT_MAX_OPEN_CONNECTIONS: i64 = 4;

/// Placeholder text that may not appear in `username` or `password`.
const TEMPLATE_VARS: [&str; 2] = ["{{username}}", "{{password}}"];

/// How the credentials are escaped when substituted into `connection_url`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlEscaping {
    /// Username and password are path-escaped (connutil for every type but `mysql`).
    Both,
    /// Only the username is escaped (connutil for `mysql`, whose driver takes the raw
    /// password).
    UsernameOnly,
}

/// The `connutil` configuration keys.
///
/// `max_idle_connections` is already defaulted and capped at `max_open_connections`, and
/// `max_open_connections` defaulted to 4, as `SQLConnectionProducer.Init` leaves them.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct ConnectionConfig {
    /// `connection_url`, as configured (templated).
    pub connection_url: String,
    /// `max_open_connections` (default 4).
    pub max_open_connections: i64,
    /// `max_idle_connections` (default and cap: `max_open_connections`).
    pub max_idle_connections: i64,
    /// `max_connection_lifetime` parsed (`"30s"`, `"1h"`, `"2d"`, `60`; default 0).
    pub max_connection_lifetime: time::Duration,
    /// `username`.
    pub username: String,
    /// `password`.
    pub password: Secret,
    /// `disable_escaping`.
    pub disable_escaping: bool,
    /// `self_managed` (Vault Enterprise static roles).
    pub self_managed: bool,
}

impl std::fmt::Debug for ConnectionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionConfig")
            .field("connection_url", &"[template]")
            .field("max_open_connections", &self.max_open_connections)
            .field("max_idle_connections", &self.max_idle_connections)
            .field("max_connection_lifetime", &self.max_connection_lifetime)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("disable_escaping", &self.disable_escaping)
            .field("self_managed", &self.self_managed)
            .finish()
    }
}

fn lookup<'m>(map: &'m Map<String, Value>, key: &str) -> Option<&'m Value> {
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key) || k.to_lowercase() == key)
            .map(|(_, v)| v)
    })
}

fn decode_err(key: &str, msg: String) -> Error {
    Error::invalid_argument(format!("1 error(s) decoding:\n\n* {msg}"))
        .context(format!("invalid `{key}`"))
}

/// `mapstructure` weak decoding into a string.
pub fn weak_string(key: &str, v: Option<&Value>) -> Result<String, Error> {
    Ok(match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => if *b { "1" } else { "0" }.into(),
        Some(Value::Number(n)) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.to_string(),
            (_, Some(u)) => u.to_string(),
            _ => n.as_f64().unwrap_or(0.0).to_string(),
        },
        Some(other) => {
            return Err(decode_err(
                key,
                format!(
                    "'{key}' expected type 'string', got unconvertible type '{}'",
                    go_kind(other)
                ),
            ));
        }
    })
}

fn go_kind(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
        Value::String(_) => "string",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::Null => "<nil>",
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`.
fn go_parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits, prefixed) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d, true)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d, true)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d, true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..], true)
    } else {
        (10, lower.as_str(), false)
    };
    // Underscores only between digits and only with a base prefix (base 0 rules).
    if digits.contains('_') {
        let ok = prefixed
            && !digits.starts_with('_')
            && !digits.ends_with('_')
            && !digits.contains("__")
            || radix == 8 && !lower.starts_with("0o") && lower.len() > 1;
        if !ok || digits.ends_with('_') || digits.contains("__") {
            return None;
        }
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    if clean.is_empty() {
        return if radix == 8 && !prefixed {
            Some(0)
        } else {
            None
        };
    }
    let u = u64::from_str_radix(&clean, radix).ok()?;
    if neg {
        if u <= i64::MAX as u64 + 1 {
            Some((u as i64).wrapping_neg())
        } else {
            None
        }
    } else {
        i64::try_from(u).ok()
    }
}

/// `mapstructure` weak decoding into an int.
pub fn weak_int(key: &str, v: Option<&Value>) -> Result<i64, Error> {
    Ok(match v {
        None | Some(Value::Null) => 0,
        Some(Value::Bool(b)) => i64::from(*b),
        Some(Value::Number(n)) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i,
            (_, Some(u)) => u as i64,
            _ => n.as_f64().unwrap_or(0.0) as i64,
        },
        Some(Value::String(s)) => {
            let s = if s.is_empty() { "0" } else { s.as_str() };
            go_parse_int(s).ok_or_else(|| {
                decode_err(
                    key,
                    format!(
                        "cannot parse '{key}' as int: strconv.ParseInt: parsing {s:?}: invalid syntax"
                    ),
                )
            })?
        }
        Some(other) => {
            return Err(decode_err(
                key,
                format!(
                    "'{key}' expected type 'int', got unconvertible type '{}'",
                    go_kind(other)
                ),
            ));
        }
    })
}

/// `mapstructure` weak decoding into a bool.
pub fn weak_bool(key: &str, v: Option<&Value>) -> Result<bool, Error> {
    Ok(match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0) != 0.0,
        Some(Value::String(s)) => match s.as_str() {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => true,
            "0" | "f" | "F" | "FALSE" | "false" | "False" | "" => false,
            _ => {
                return Err(decode_err(
                    key,
                    format!(
                        "cannot parse '{key}' as bool: strconv.ParseBool: parsing {s:?}: invalid syntax"
                    ),
                ));
            }
        },
        Some(other) => {
            return Err(decode_err(
                key,
                format!(
                    "'{key}' expected type 'bool', got unconvertible type '{}'",
                    go_kind(other)
                ),
            ));
        }
    })
}

/// `parseutil.ParseDurationSecond`: a bare integer (string or number) is seconds, `Nd` is
/// days, otherwise a Go duration (`1h30m`, `1.5s`, `300ms`); `""`/absent is 0.
pub fn parse_duration_second(v: Option<&Value>) -> Result<time::Duration, Error> {
    let bad = |s: &str| Error::invalid_argument(format!("invalid max_connection_lifetime: {s}"));
    match v {
        None | Some(Value::Null) => Ok(time::Duration::ZERO),
        Some(Value::Number(n)) => {
            let secs = match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => i as i128,
                (_, Some(u)) => u as i128,
                // Go converts the float to a Duration (truncating) before multiplying.
                _ => n.as_f64().unwrap_or(0.0).trunc() as i128,
            };
            checked_secs(secs).ok_or_else(|| bad("duration overflow"))
        }
        Some(Value::String(s)) => {
            if s.is_empty() {
                return Ok(time::Duration::ZERO);
            }
            if let Ok(i) = s.parse::<i64>() {
                return checked_secs(i as i128).ok_or_else(|| bad("duration overflow"));
            }
            if let Some(d) = s.strip_suffix('d') {
                let days: i64 = d.parse().map_err(|_| {
                    bad(&format!("strconv.ParseInt: parsing {d:?}: invalid syntax"))
                })?;
                return checked_secs(days as i128 * 86_400).ok_or_else(|| bad("duration overflow"));
            }
            go_parse_duration(s)
                .map(time::Duration::nanoseconds)
                .ok_or_else(|| {
                    bad(&format!(
                        "time: invalid duration {}",
                        super::template_quote(s)
                    ))
                })
        }
        Some(_) => Err(bad("could not parse duration from input")),
    }
}

fn checked_secs(secs: i128) -> Option<time::Duration> {
    let nanos = secs.checked_mul(1_000_000_000)?;
    i64::try_from(nanos).ok().map(time::Duration::nanoseconds)
}

/// Go's `time.ParseDuration`, in nanoseconds.
pub(crate) fn go_parse_duration(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let int_part = &rest[..int_len];
        rest = &rest[int_len..];
        let mut frac_part = "";
        if rest.starts_with('.') {
            rest = &rest[1..];
            let n = rest.bytes().take_while(u8::is_ascii_digit).count();
            frac_part = &rest[..n];
            rest = &rest[n..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let mult: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let whole: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().ok()?
        };
        let mut v = whole.checked_mul(mult)?;
        let mut scale = mult;
        for d in frac_part.bytes() {
            scale /= 10;
            if scale == 0 {
                break;
            }
            v += u128::from(d - b'0') * scale;
        }
        total = total.checked_add(v)?;
        if total > i64::MAX as u128 + u128::from(neg) {
            return None;
        }
    }
    let t = total as i128;
    i64::try_from(if neg { -t } else { t }).ok()
}

impl ConnectionConfig {
    /// Decodes the `connutil` keys from the configuration the host sent, applying the
    /// defaults. Unknown keys are ignored. Fails with `connection_url cannot be empty`
    /// when there is no URL.
    pub fn from_config(config: &ConfigMap) -> Result<Self, Error> {
        let cfg = Self::decode(config)?;
        if cfg.connection_url.is_empty() {
            return Err(Error::invalid_argument("connection_url cannot be empty"));
        }
        Ok(cfg)
    }

    fn decode(config: &ConfigMap) -> Result<Self, Error> {
        let max_open = match weak_int(
            "max_open_connections",
            lookup(config, "max_open_connections"),
        )? {
            0 => DEFAULT_MAX_OPEN_CONNECTIONS,
            n => n,
        };
        let mut max_idle = weak_int(
            "max_idle_connections",
            lookup(config, "max_idle_connections"),
        )?;
        if max_idle == 0 || max_idle > max_open {
            max_idle = max_open;
        }
        Ok(ConnectionConfig {
            connection_url: weak_string("connection_url", lookup(config, "connection_url"))?,
            max_open_connections: max_open,
            max_idle_connections: max_idle,
            max_connection_lifetime: parse_duration_second(lookup(
                config,
                "max_connection_lifetime",
            ))?,
            username: weak_string("username", lookup(config, "username"))?,
            password: Secret::new(weak_string("password", lookup(config, "password"))?),
            disable_escaping: weak_bool("disable_escaping", lookup(config, "disable_escaping"))?,
            self_managed: weak_bool("self_managed", lookup(config, "self_managed"))?,
        })
    }

    /// The `connection_url` with `{{username}}` and `{{password}}` filled in, as
    /// `SQLConnectionProducer.Init` does (the errors are connutil's).
    pub fn render_url(&self, escaping: UrlEscaping) -> Result<Secret, Error> {
        render_connection_url(
            &self.connection_url,
            &self.username,
            self.password.expose(),
            self.disable_escaping,
            self.self_managed,
            escaping,
        )
    }
}

impl<'de> Deserialize<'de> for ConnectionConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = Map::<String, Value>::deserialize(d)?;
        ConnectionConfig::decode(&map).map_err(|e| serde::de::Error::custom(e.message()))
    }
}

/// Builds the connection URL like connutil: rejects template variables in the credentials,
/// path-escapes them unless `disable_escaping` (the password only for
/// [`UrlEscaping::Both`]), then substitutes in one pass.
///
/// ```
/// use dbplugin::toolkit::connection::{render_connection_url, UrlEscaping};
///
/// let url = render_connection_url("u={{username}} p={{password}}", "a b", "c/d", false, false, UrlEscaping::UsernameOnly)?;
/// assert_eq!(url.expose(), "u=a%20b p=c/d");
/// # Ok::<(), dbplugin::Error>(())
/// ```
pub fn render_connection_url(
    url: &str,
    username: &str,
    password: &str,
    disable_escaping: bool,
    self_managed: bool,
    escaping: UrlEscaping,
) -> Result<Secret, Error> {
    if url.is_empty() {
        return Err(Error::invalid_argument("connection_url cannot be empty"));
    }
    let templated = TEMPLATE_VARS.iter().all(|v| url.contains(v));
    if TEMPLATE_VARS
        .iter()
        .any(|v| username.contains(v) || password.contains(v))
    {
        return Err(Error::invalid_argument(
            "username and/or password cannot contain the template variables",
        ));
    }
    if !self_managed && username.is_empty() && password.is_empty() && templated {
        return Err(Error::invalid_argument(
            "must either provide username/password or set self-managed to 'true'",
        ));
    }
    if self_managed && (!username.is_empty() || !password.is_empty() || !templated) {
        return Err(Error::invalid_argument(
            "cannot use both self-managed and vault-managed workflows",
        ));
    }
    let (user, pass) = if self_managed {
        (
            "self-managed-user".to_owned(),
            "self-managed-password".to_owned(),
        )
    } else {
        let user = if disable_escaping {
            username.to_owned()
        } else {
            path_escape(username)
        };
        let pass = if disable_escaping || escaping == UrlEscaping::UsernameOnly {
            password.to_owned()
        } else {
            path_escape(password)
        };
        (user, pass)
    };
    Ok(Secret::new(super::statements::substitute(
        url,
        &[("username", &user), ("password", &pass)],
    )))
}

/// Go's `url.PathEscape`: everything but `A-Z a-z 0-9 - _ . ~ $ & + : = @` is `%XX`-encoded.
pub fn path_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
            | b'$'
            | b'&'
            | b'+'
            | b':'
            | b'='
            | b'@' => out.push(b as char),
            _ => {
                use std::fmt::Write as _;
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// connutil's PostgreSQL URL settings: for `postgres://` / `postgresql://` URLs, appends
/// `timezone=UTC` and, unless present, `application_name=vault`.
pub fn postgres_url_settings(url: &str) -> String {
    let mut res = url.to_owned();
    if res.starts_with("postgres://") || res.starts_with("postgresql://") {
        res.push_str(if res.contains('?') {
            "&timezone=UTC"
        } else {
            "?timezone=UTC"
        });
        if !res.contains("application_name") {
            res.push_str("&application_name=vault");
        }
    }
    res
}

/// A connection URL that failed to parse. Return it (or wrap it as the source of your
/// error) and [`Sanitizer`](super::sanitize::Sanitizer) replaces the whole message with
/// `unable to parse connection url`, as the SDK does for Go's `*url.Error`.
#[derive(Debug)]
pub struct UrlParseError(pub String);

impl std::fmt::Display for UrlParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UrlParseError {}
