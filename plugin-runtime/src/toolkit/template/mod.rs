//! Username templates: the Go `text/template` dialect of the SDK's `helper/template`.
//!
//! ```
//! use dbplugin::toolkit::template::{username_metadata, Template, POSTGRES_DEFAULT};
//!
//! let tpl = Template::parse(r#"{{ printf "v_%s_%s" (.DisplayName | truncate 5) .RoleName | lowercase }}"#)?;
//! let meta = username_metadata("TOKEN-abc", "Reader");
//! assert_eq!(tpl.render(&meta)?, "v_token_reader");
//!
//! // The built-in plugins' defaults are here too; they contain `random` and `unix_time`.
//! let username = Template::parse(POSTGRES_DEFAULT)?.render(&meta)?;
//! assert!(username.starts_with("v-TOKEN-ab-Reader-") && username.len() <= 63);
//!
//! // Errors carry Go's text and the position.
//! let err = Template::parse("{{ .DisplayName | nope }}").unwrap_err();
//! assert_eq!(err.line(), 1);
//! assert_eq!(err.to_string(), r#"unable to parse template: template: template:1: function "nope" not defined"#);
//! # Ok::<(), dbplugin::toolkit::template::TemplateError>(())
//! ```
//!
//! # Language
//!
//! Text with `{{ … }}` actions (spaces inside optional), `{{-`/`-}}` trimming, comments
//! `{{/* … */}}`, pipelines `a | f x` (the piped value is the **last** argument), parentheses,
//! string (`"…"` with Go escapes, `` `raw` ``), character and number literals, `true`,
//! `false`, `nil`, fields of the data (`.DisplayName`, `.RoleName`), `.`, variables (`$`,
//! `$x := …`, `$x = …`), `if`/`else if`/`else`/`end`, `with`, `range` over an integer with
//! `break`/`continue`, and named templates: `{{define "n"}}…{{end}}` at the top level,
//! `{{template "n" pipeline}}`, `{{block "n" pipeline}}…{{end}}`.
//!
//! Values are Go strings, that is bytes: `truncate` counts bytes and can cut a multi-byte
//! character, and later functions see the partial bytes exactly as Go's do (`lowercase`
//! turns each into U+FFFD). [`Template::render_bytes`] returns Go's exact bytes;
//! [`Template::render`] returns a `String` and rejects a result that is not UTF-8, which
//! no database accepts as a user name (a Go plugin would fail later, less clearly).
//!
//! Functions, with the SDK's argument order:
//!
//! | function | result |
//! |---|---|
//! | `random n` | `n` base62 characters |
//! | `truncate n s` | the first `n` **bytes** of `s` (error if `n <= 0`) |
//! | `truncate_sha256 n s` | `s` if it fits, else its first `n-8` bytes and 8 hex digits of the SHA-256 of the rest (error if `n <= 8`) |
//! | `uppercase s`, `lowercase s` | Go's `strings.ToUpper`/`ToLower` |
//! | `replace find with s` | every `find` in `s` replaced |
//! | `sha256 s`, `base64 s` | hex SHA-256; padded standard base64 |
//! | `decode_base64 s`, `hex s`, `decode_hex s`, `glob pattern s` | OpenBao additions |
//! | `unix_time`, `unix_time_millis`, `timestamp layout`, `uuid` | clock and random values |
//!
//! and the `text/template` built-ins `printf print println len index slice and or not eq ne
//! lt le gt ge html js urlquery` (`call` always fails: there are no function values).
//!
//! `{{template}}` calls nest at most 100,000 deep, as in Go (such a template renders on a
//! thread of its own with a large stack). Vault rejects templates of 100,000 bytes or
//! more; so does this engine (OpenBao has no limit).
//!
//! # Determinism in tests
//!
//! [`Template::render_with`] takes an [`Environment`] supplying randomness and the clock.

mod exec;
mod funcs;
mod parse;
mod value;

use std::fmt;
use std::sync::Arc;

use time::OffsetDateTime;

pub use value::Value;
pub(crate) use value::go_quote;

use crate::UsernameMetadata;

/// PostgreSQL's default username template (OpenBao and Vault).
pub const POSTGRES_DEFAULT: &str = r#"{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 8) (.RoleName | truncate 8) (random 20) (unix_time) | truncate 63 }}"#;
/// MySQL's default username template.
pub const MYSQL_DEFAULT: &str = r#"{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 10) (.RoleName | truncate 10) (random 20) (unix_time) | truncate 32 }}"#;
/// The legacy MySQL plugin's default username template (16 characters).
pub const MYSQL_LEGACY_DEFAULT: &str =
    r#"{{ printf "v-%s-%s" (.RoleName | truncate 4) (random 20) | truncate 16 }}"#;
/// MongoDB's default username template (Vault).
pub const MONGODB_DEFAULT: &str = r#"{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 15) (.RoleName | truncate 15) (random 20) (unix_time) | replace "." "-" | truncate 100 }}"#;
/// Cassandra's and InfluxDB's default username template (OpenBao).
pub const CASSANDRA_DEFAULT: &str = r#"{{ printf "v_%s_%s_%s_%s" (.DisplayName | truncate 15) (.RoleName | truncate 15) (random 20) (unix_time) | truncate 100 | replace "-" "_" | lowercase }}"#;
/// Snowflake's default username template (Vault).
pub const SNOWFLAKE_DEFAULT: &str = r#"{{ printf "v_%s_%s_%s_%s" (.DisplayName | truncate 32) (.RoleName | truncate 32) (random 20) (unix_time) | truncate 255 | replace "-" "_" }}"#;

/// Templates of this many bytes or more are rejected (as Vault does).
pub const MAX_TEMPLATE_LEN: usize = 100_000;

/// The data a template reads fields from.
pub trait TemplateData: Sync {
    /// The value of `.name`, or `None` if there is no such field.
    fn field(&self, name: &str) -> Option<Value>;
    /// The Go type name used in error messages, e.g. `dbplugin.UsernameMetadata`.
    fn type_name(&self) -> &str;
    /// Whether missing fields print `<no value>` (a Go map) instead of failing (a struct).
    fn is_map(&self) -> bool {
        false
    }
    /// How `{{ . }}` prints.
    fn display(&self) -> String;
}

impl TemplateData for UsernameMetadata {
    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "DisplayName" => Some(Value::Str(self.display_name.clone().into_bytes())),
            "RoleName" => Some(Value::Str(self.role_name.clone().into_bytes())),
            _ => None,
        }
    }

    fn type_name(&self) -> &str {
        "dbplugin.UsernameMetadata"
    }

    fn display(&self) -> String {
        format!("{{{} {}}}", self.display_name, self.role_name)
    }
}

macro_rules! map_data {
    ($t:ty) => {
        impl TemplateData for $t {
            fn field(&self, name: &str) -> Option<Value> {
                self.get(name).map(|v| Value::Str(v.clone().into_bytes()))
            }
            fn type_name(&self) -> &str {
                "map[string]string"
            }
            fn is_map(&self) -> bool {
                true
            }
            fn display(&self) -> String {
                let mut pairs: Vec<_> = self.iter().collect();
                pairs.sort();
                let body: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("map[{}]", body.join(" "))
            }
        }
    };
}
map_data!(std::collections::BTreeMap<String, String>);
map_data!(std::collections::HashMap<String, String>);

/// Builds the metadata a database username template receives (`.DisplayName`,
/// `.RoleName`).
///
/// ```
/// let meta = dbplugin::toolkit::template::username_metadata("token", "app");
/// assert_eq!(meta.role_name, "app");
/// ```
pub fn username_metadata(
    display_name: impl Into<String>,
    role_name: impl Into<String>,
) -> UsernameMetadata {
    UsernameMetadata {
        display_name: display_name.into(),
        role_name: role_name.into(),
    }
}

/// Where `random`, `uuid` and the time functions get their values.
pub trait Environment: Sync {
    /// `n` base62 characters.
    fn random(&self, n: usize) -> String;
    /// The current time, in the zone `timestamp` should use.
    fn now(&self) -> OffsetDateTime;
    /// A UUID-shaped string (36 characters, lower-case hex, 8-4-4-4-12).
    fn uuid(&self) -> String;
}

/// The real environment: the OS CSPRNG and the system clock, in UTC.
///
/// Go's `timestamp` formats in the process's local zone; plugin processes normally run
/// with UTC, and reading the local offset is not sound in a multi-threaded Rust process.
/// Supply your own [`Environment`] for another zone.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemEnvironment;

impl Environment for SystemEnvironment {
    fn random(&self, n: usize) -> String {
        crate::toolkit::credentials::base62_random(n)
    }

    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    fn uuid(&self) -> String {
        let mut b = [0u8; 16];
        crate::toolkit::credentials::random_bytes(&mut b);
        let h = funcs::hex_encode(&b);
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }
}

/// What went wrong with a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TemplateErrorKind {
    /// The template is empty (`missing template`).
    Empty,
    /// The template is 100,000 bytes or longer.
    TooLarge,
    /// The template does not parse.
    Parse,
    /// The template failed while rendering.
    Exec,
}

/// A template that could not be parsed or rendered; `Display` is the SDK's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    kind: TemplateErrorKind,
    line: usize,
    offset: usize,
    message: String,
}

impl TemplateError {
    fn parse(line: usize, offset: usize, msg: impl Into<String>) -> Self {
        TemplateError {
            kind: TemplateErrorKind::Parse,
            line,
            offset,
            message: format!("template: template:{line}: {}", msg.into()),
        }
    }

    fn exec(offset: usize, message: String) -> Self {
        TemplateError {
            kind: TemplateErrorKind::Exec,
            line: 0,
            offset,
            message,
        }
    }

    /// The kind of failure.
    pub fn kind(&self) -> TemplateErrorKind {
        self.kind
    }

    /// The 1-based line of a parse error (0 otherwise).
    pub fn line(&self) -> usize {
        self.line
    }

    /// The byte offset in the template the error is about.
    pub fn offset(&self) -> usize {
        self.offset
    }
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            TemplateErrorKind::Empty => f.write_str("missing template"),
            TemplateErrorKind::TooLarge => {
                f.write_str("template too large, length of template must be less than 100,000")
            }
            TemplateErrorKind::Parse => write!(f, "unable to parse template: {}", self.message),
            TemplateErrorKind::Exec => write!(f, "unable to apply template: {}", self.message),
        }
    }
}

impl std::error::Error for TemplateError {}

/// A parsed template; cheap to clone and to render many times.
#[derive(Debug, Clone)]
pub struct Template {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    raw: String,
    /// The main template and every defined one, by name.
    templates: Vec<(Vec<u8>, Vec<parse::Node>)>,
    /// Whether execution can recurse through `{{template}}`.
    calls: bool,
}

/// The stack reserved for rendering a template that calls templates: enough for Go's
/// nesting limit of 100,000 calls. It is address space; only the depth actually reached
/// uses memory.
const CALL_STACK: usize = 1 << 30;

impl Template {
    /// Parses `raw` (the SDK's `NewTemplate(Template(raw))`).
    pub fn parse(raw: &str) -> Result<Template, TemplateError> {
        if raw.is_empty() {
            return Err(TemplateError {
                kind: TemplateErrorKind::Empty,
                line: 0,
                offset: 0,
                message: String::new(),
            });
        }
        if raw.len() >= MAX_TEMPLATE_LEN {
            return Err(TemplateError {
                kind: TemplateErrorKind::TooLarge,
                line: 0,
                offset: MAX_TEMPLATE_LEN,
                message: String::new(),
            });
        }
        let parsed = parse::parse(raw, &|name| funcs::lookup(name).is_some())?;
        Ok(Template {
            inner: Arc::new(Inner {
                raw: raw.to_owned(),
                templates: parsed.templates,
                calls: parsed.calls,
            }),
        })
    }

    /// The template text.
    pub fn as_str(&self) -> &str {
        &self.inner.raw
    }

    /// Renders with real randomness and the system clock (the SDK's `Generate`).
    pub fn render(&self, data: &dyn TemplateData) -> Result<String, TemplateError> {
        self.render_with(data, &SystemEnvironment)
    }

    /// Renders with the given environment.
    ///
    /// ```
    /// use dbplugin::time::OffsetDateTime;
    /// use dbplugin::toolkit::template::{username_metadata, Environment, Template};
    ///
    /// struct Fixed;
    /// impl Environment for Fixed {
    ///     fn random(&self, n: usize) -> String { "x".repeat(n) }
    ///     fn now(&self) -> OffsetDateTime { OffsetDateTime::UNIX_EPOCH }
    ///     fn uuid(&self) -> String { "00000000-0000-0000-0000-000000000000".into() }
    /// }
    ///
    /// let tpl = Template::parse("{{ .RoleName }}-{{ random 3 }}-{{ unix_time }}")?;
    /// let meta = username_metadata("", "r");
    /// assert_eq!(tpl.render_with(&meta, &Fixed)?, "r-xxx-0");
    /// # Ok::<(), dbplugin::toolkit::template::TemplateError>(())
    /// ```
    pub fn render_with(
        &self,
        data: &dyn TemplateData,
        env: &dyn Environment,
    ) -> Result<String, TemplateError> {
        let out = self.render_bytes_with(data, env)?;
        String::from_utf8(out).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            TemplateError::exec(
                at,
                format!(
                    "the result is not valid UTF-8 at byte {at} (a byte-counting function \
                     such as truncate cut a multi-byte character)"
                ),
            )
        })
    }

    /// Renders to Go's exact bytes (with real randomness and the system clock), which
    /// may be invalid UTF-8 where `truncate` cut a character.
    ///
    /// ```
    /// use dbplugin::toolkit::template::{username_metadata, Template};
    ///
    /// let tpl = Template::parse("{{ .RoleName | truncate 2 }}")?;
    /// let meta = username_metadata("", "é!");
    /// assert_eq!(tpl.render_bytes(&meta)?, b"\xc3\xa9");
    /// let cut = username_metadata("", "xé");
    /// assert_eq!(tpl.render_bytes(&cut)?, b"x\xc3");
    /// assert!(tpl.render(&cut).unwrap_err().to_string().contains("not valid UTF-8 at byte 1"));
    /// # Ok::<(), dbplugin::toolkit::template::TemplateError>(())
    /// ```
    pub fn render_bytes(&self, data: &dyn TemplateData) -> Result<Vec<u8>, TemplateError> {
        self.render_bytes_with(data, &SystemEnvironment)
    }

    /// [`render_bytes`](Self::render_bytes) with the given environment.
    pub fn render_bytes_with(
        &self,
        data: &dyn TemplateData,
        env: &dyn Environment,
    ) -> Result<Vec<u8>, TemplateError> {
        let run = || {
            let mut st = exec::State::new(&self.inner.raw, &self.inner.templates, data, env);
            st.run().map(|()| st.out)
        };
        if !self.inner.calls {
            return run();
        }
        std::thread::scope(|scope| {
            let worker = std::thread::Builder::new()
                .name("dbplugin-template".into())
                .stack_size(CALL_STACK)
                .spawn_scoped(scope, run)
                .map_err(|e| {
                    TemplateError::exec(0, format!("cannot start a thread to render on: {e}"))
                })?;
            worker.join().unwrap_or_else(|_| {
                Err(TemplateError::exec(
                    0,
                    "rendering the template panicked".into(),
                ))
            })
        })
    }

    /// Parses and renders once with empty metadata, as the built-in plugins validate a
    /// `username_template` at Initialize (`invalid username template: …` on failure is
    /// left to the caller).
    pub fn parse_and_check(raw: &str) -> Result<Template, TemplateError> {
        let t = Template::parse(raw)?;
        t.render(&UsernameMetadata::default())?;
        Ok(t)
    }
}
