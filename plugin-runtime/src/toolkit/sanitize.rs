//! Removing secrets from error messages, as the SDK's error-sanitizer middleware does.
//!
//! ```
//! use dbplugin::Error;
//! use dbplugin::toolkit::connection::UrlParseError;
//! use dbplugin::toolkit::sanitize::Sanitizer;
//!
//! let sanitizer = Sanitizer::new()
//!     .password("hunter2")
//!     .secret("tok-123", "[token]");
//! assert_eq!(
//!     sanitizer.sanitize("login failed for admin/hunter2 with tok-123"),
//!     "login failed for admin/[password] with [token]",
//! );
//! // Nothing to replace: no allocation.
//! assert!(matches!(sanitizer.sanitize("fine"), std::borrow::Cow::Borrowed(_)));
//!
//! // URL parse failures lose their text entirely.
//! let err = Error::from(UrlParseError("parse \"postgres://u:hunter2@h\": bad port".into()));
//! assert_eq!(sanitizer.sanitize_error(err).to_string(), "unable to parse connection url");
//! ```
//!
//! The SDK's rules, in order: an error whose chain contains a URL parse error becomes
//! `unable to parse connection url`; otherwise every configured secret value is replaced by
//! its label in the message (the connection password by `[password]`), keeping the error's
//! kind and dropping its source chain (whose text could hold the secret). Empty secrets are
//! ignored. Longer secrets are replaced first, so a secret containing another is never left
//! half-replaced.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;

use crate::{ConfigMap, Error, Secret};

/// The label the SDK puts in place of the connection password.
pub const PASSWORD_LABEL: &str = "[password]";

/// The message that replaces any error caused by an unparsable connection URL.
pub const URL_ERROR_MESSAGE: &str = "unable to parse connection url";

type UrlCheck = fn(&(dyn StdError + 'static)) -> bool;

/// Replaces secret values in error text; see the module docs.
#[derive(Clone, Default)]
pub struct Sanitizer {
    /// (value, label), longest value first.
    secrets: Vec<(Secret, String)>,
    url_checks: Vec<UrlCheck>,
}

impl fmt::Debug for Sanitizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sanitizer")
            .field(
                "labels",
                &self.secrets.iter().map(|(_, l)| l).collect::<Vec<_>>(),
            )
            .field("url_error_types", &self.url_checks.len())
            .finish()
    }
}

fn is_type<E: StdError + 'static>(e: &(dyn StdError + 'static)) -> bool {
    e.is::<E>()
}

impl Sanitizer {
    /// A sanitizer that knows no secrets and treats
    /// [`UrlParseError`](super::connection::UrlParseError) as a URL failure.
    pub fn new() -> Self {
        Sanitizer {
            secrets: Vec::new(),
            url_checks: vec![is_type::<super::connection::UrlParseError>],
        }
    }

    /// The SDK built-ins' rule: the configuration's `password` becomes `[password]`.
    pub fn from_config(config: &ConfigMap) -> Self {
        let password = config
            .get("password")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        Self::new().password(password)
    }

    /// Replaces `value` by `label`.
    #[must_use]
    pub fn secret(mut self, value: impl Into<Secret>, label: impl Into<String>) -> Self {
        self.add(value, label);
        self
    }

    /// Replaces `value` by `[password]`.
    #[must_use]
    pub fn password(self, value: impl Into<Secret>) -> Self {
        self.secret(value, PASSWORD_LABEL)
    }

    /// Adds a secret in place.
    pub fn add(&mut self, value: impl Into<Secret>, label: impl Into<String>) {
        let value = value.into();
        if value.is_empty() {
            return;
        }
        let label = label.into();
        self.secrets.retain(|(v, _)| v != &value);
        let at = self
            .secrets
            .iter()
            .position(|(v, _)| v.expose().len() < value.expose().len())
            .unwrap_or(self.secrets.len());
        self.secrets.insert(at, (value, label));
    }

    /// Also treats errors of type `E` anywhere in a chain as URL parse failures (for
    /// example a URL crate's parse error).
    #[must_use]
    pub fn url_error<E: StdError + 'static>(mut self) -> Self {
        self.url_checks.push(is_type::<E>);
        self
    }

    /// Whether no secret is configured.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// `text` with every secret replaced; borrowed when none occurs.
    pub fn sanitize<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out: Cow<'a, str> = Cow::Borrowed(text);
        for (value, label) in &self.secrets {
            if out.contains(value.expose()) {
                out = Cow::Owned(out.replace(value.expose(), label));
            }
        }
        out
    }

    /// Whether `err`'s source chain holds a URL parse failure.
    pub fn is_url_error(&self, err: &Error) -> bool {
        let mut cur: Option<&(dyn StdError + 'static)> = match err.source() {
            Some(s) => Some(s as &(dyn StdError + 'static)),
            None => None,
        };
        while let Some(e) = cur {
            if self.url_checks.iter().any(|check| check(e)) {
                return true;
            }
            cur = e.source();
        }
        false
    }

    /// Applies the SDK's rules to an error (kind kept; source chain dropped when anything
    /// changed).
    pub fn sanitize_error(&self, err: Error) -> Error {
        if self.is_url_error(&err) {
            return Error::with_kind(err.kind(), URL_ERROR_MESSAGE);
        }
        match self.sanitize(err.message()) {
            Cow::Borrowed(_) => err,
            Cow::Owned(clean) => Error::with_kind(err.kind(), clean),
        }
    }
}
