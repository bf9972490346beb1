//! What a Go plugin author gets from the Vault SDK's helpers, for Rust plugins.
//!
//! ```
//! use dbplugin::toolkit::{credentials, statements, template::{self, Template}};
//!
//! let meta = template::username_metadata("token", "ro");
//! let username = Template::parse(r#"{{ printf "v-%s-%s" .DisplayName .RoleName }}"#)?.render(&meta)?;
//! let password = credentials::generate_password();
//! let sql = statements::Placeholders::new().name(&username).password(password.clone())
//!     .apply(r#"CREATE ROLE "{{name}}" PASSWORD '{{password}}'"#);
//! assert_eq!(sql, format!(r#"CREATE ROLE "v-token-ro" PASSWORD '{}'"#, password.expose()));
//! # Ok::<(), dbplugin::Error>(())
//! ```
//!
//! - [`statements`]: placeholders, splitting, identifier quoting, the expiration format.
//! - [`template`]: username templates, with the built-in plugins' defaults.
//! - [`credentials`]: base62 randomness, `credsutil`-style usernames and passwords.
//! - [`connection`]: the `connutil` configuration keys and `connection_url` building.
//! - [`sanitize`]: removing secrets from error messages.

pub mod connection;
pub mod credentials;
mod gostr;
mod gotime;
pub mod sanitize;
pub mod statements;
pub mod template;

/// Go's `%q` of a string.
pub(crate) fn template_quote(s: &str) -> String {
    template::go_quote(s)
}
