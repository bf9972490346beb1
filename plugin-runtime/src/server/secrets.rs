//! Which values must never leave the plugin in an error message.
//!
//! Every error a plugin returns passes through a [`Sanitizer`] built from the connection
//! configuration (the `password`, other keys the plugin marks secret, the password as it
//! appears URL-escaped, the rendered `connection_url` and credentials written literally into
//! it) and from the request (new passwords), as the Go SDK's error-sanitizer middleware does
//! with the plugin's secret values.

use crate::toolkit::connection::{UrlEscaping, path_escape, render_connection_url};
use crate::toolkit::sanitize::{PASSWORD_LABEL, Sanitizer};
use crate::{ConfigMap, Error, Secret};

/// Config keys treated as secret unless the plugin says otherwise.
pub(crate) const DEFAULT_SECRET_KEYS: &[&str] = &["password", "private_key"];

fn text<'a>(config: &'a ConfigMap, key: &str) -> Option<&'a str> {
    config
        .get(key)
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
}

/// The password written literally in `scheme://user:password@host`.
fn userinfo_password(url: &str) -> Option<&str> {
    let rest = &url[url.find("://")? + 3..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let userinfo = &authority[..authority.rfind('@')?];
    let (_, password) = userinfo.split_once(':')?;
    (!password.is_empty()).then_some(password)
}

/// The sanitizer of one connection configuration.
pub(crate) fn config_sanitizer(config: &ConfigMap, secret_keys: &[String]) -> Sanitizer {
    let mut s = Sanitizer::new();
    for key in secret_keys {
        if let Some(v) = text(config, key) {
            let label = if key == "password" {
                PASSWORD_LABEL.to_owned()
            } else {
                format!("[{key}]")
            };
            if key == "password" {
                let escaped = path_escape(v);
                if escaped != v {
                    s.add(escaped, label.clone());
                }
            }
            s.add(v, label);
        }
    }
    if let Some(url) = text(config, "connection_url") {
        if let Some(p) = userinfo_password(url) {
            s.add(p, PASSWORD_LABEL);
        }
        let username = text(config, "username").unwrap_or_default();
        let password = text(config, "password").unwrap_or_default();
        if (url.contains("{{password}}") || userinfo_password(url).is_some())
            && let Ok(rendered) =
                render_connection_url(url, username, password, false, false, UrlEscaping::Both)
        {
            s.add(rendered, "[connection_url]");
        }
    }
    s
}

/// `base` plus the request's own secrets.
fn with_request(base: &Sanitizer, request_secrets: &[&Secret]) -> Option<Sanitizer> {
    if request_secrets.iter().all(|s| s.is_empty()) {
        return None;
    }
    let mut s = base.clone();
    for secret in request_secrets {
        s.add((*secret).clone(), PASSWORD_LABEL);
    }
    Some(s)
}

/// Applies `base` plus the request's own secrets to a text (a panic message).
pub(crate) fn clean_text(base: &Sanitizer, request_secrets: &[&Secret], text: &str) -> String {
    match with_request(base, request_secrets) {
        Some(s) => s.sanitize(text).into_owned(),
        None => base.sanitize(text).into_owned(),
    }
}

/// Applies `base` plus the request's own secrets to an error.
pub(crate) fn clean(base: &Sanitizer, request_secrets: &[&Secret], err: Error) -> Error {
    match with_request(base, request_secrets) {
        Some(s) => s.sanitize_error(err),
        None => base.sanitize_error(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Vec<String> {
        DEFAULT_SECRET_KEYS
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    }

    #[test]
    fn password_url_and_literal_credentials_are_removed() {
        let config: ConfigMap = serde_json::from_str(
            r#"{"connection_url":"postgres://{{username}}:{{password}}@db:5432/app","username":"vault","password":"p@ss/w0rd","private_key":"KEYDATA"}"#,
        )
        .unwrap();
        let s = config_sanitizer(&config, &keys());
        let escaped = path_escape("p@ss/w0rd");
        assert_ne!(escaped, "p@ss/w0rd");
        let msg = format!(
            "dial postgres://vault:{escaped}@db:5432/app failed; auth p@ss/w0rd; key KEYDATA; \
             retry with {escaped}"
        );
        let out = s.sanitize(&msg);
        assert!(
            !out.contains("p@ss/w0rd") && !out.contains(&escaped) && !out.contains("KEYDATA"),
            "{out}"
        );
        assert!(out.contains("[connection_url]"), "{out}");

        let literal: ConfigMap =
            serde_json::from_str(r#"{"connection_url":"redis://admin:s3cr3t@host:6379"}"#).unwrap();
        let out = config_sanitizer(&literal, &keys())
            .sanitize("cannot reach redis://admin:s3cr3t@host:6379");
        assert!(!out.contains("s3cr3t"), "{out}");
    }

    #[test]
    fn request_secrets_are_removed_and_kind_kept() {
        let e = Error::invalid_argument("bad password hunter22");
        let out = clean(&Sanitizer::new(), &[&Secret::new("hunter22")], e);
        assert_eq!(out.to_string(), "bad password [password]");
        assert_eq!(out.kind(), crate::ErrorKind::InvalidArgument);
    }
}
