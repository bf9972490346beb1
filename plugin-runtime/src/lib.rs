//! Write HashiCorp Vault and OpenBao **database secrets-engine plugins** in Rust.
//!
//! A plugin is a type implementing [`Database`], served by [`Server`]: the runtime speaks
//! go-plugin's process protocol exactly as Vault and OpenBao expect it (magic cookie,
//! version negotiation, AutoMTLS with the host's P-521 certificate, the handshake line,
//! health/controller/stdio/broker services, multiplexing, the version probe, hclog JSON
//! logging on stderr, shutdown).
//!
//! ```no_run
//! use std::sync::Mutex;
//! use dbplugin::{
//!     Database, DeleteUserRequest, Error, InitializeRequest, InitializeResponse,
//!     NewUserRequest, NewUserResponse, Result, UpdateUserRequest,
//! };
//!
//! #[derive(Default)]
//! struct MyDb {
//!     url: Mutex<Option<String>>,
//! }
//!
//! impl Database for MyDb {
//!     async fn type_name(&self) -> Result<String> {
//!         Ok("mydb".into())
//!     }
//!
//!     async fn initialize(&self, req: InitializeRequest) -> Result<InitializeResponse> {
//!         let url = req.config.get("connection_url").and_then(|v| v.as_str())
//!             .ok_or_else(|| Error::invalid_argument("`connection_url` is required"))?;
//!         *self.url.lock().unwrap() = Some(url.to_owned());
//!         Ok(InitializeResponse::new(req.config))
//!     }
//!
//!     async fn new_user(&self, req: NewUserRequest) -> Result<NewUserResponse> {
//!         Ok(NewUserResponse::new(format!("v-{}", req.username_config.role_name)))
//!     }
//!
//!     async fn update_user(&self, _req: UpdateUserRequest) -> Result<()> {
//!         Ok(())
//!     }
//!
//!     async fn delete_user(&self, _req: DeleteUserRequest) -> Result<()> {
//!         Ok(())
//!     }
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     dbplugin::Server::new(MyDb::default)
//!         .version(env!("CARGO_PKG_VERSION"))
//!         .serve()
//! }
//! ```
//!
//! # Logging
//!
//! Use `tracing`'s macros; events reach the host's log at their level (see the `logging`
//! notes on [`Server::serve`]). Never log a secret: [`Secret`] prints `[redacted]`.
//!
//! # Feature flags
//!
//! - `macros` (default): the `#[database_plugin]` attribute.
//! - `testkit`: the `testkit` module, a host that launches a plugin binary as Vault does.
#![doc(test(no_crate_inject, attr(deny(warnings))))]

mod config;
mod database;
mod error;
mod logging;
mod secret;
mod server;

#[cfg(feature = "testkit")]
pub mod testkit;
pub mod toolkit;
pub mod v4;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

/// Not public API; exempt from semver. The fuzz targets' bodies, shared by the `fuzz/` crate
/// and the corpus replay test.
#[doc(hidden)]
#[path = "fuzz.rs"]
pub mod __fuzz;

#[cfg(feature = "macros")]
#[doc(inline)]
pub use dbplugin_macros::database_plugin;

pub use config::ConfigMap;
pub use database::{
    ChangeExpiration, ChangePassword, ChangePublicKey, CredentialType, Database, DatabaseFactory,
    DeleteUserRequest, InitializeRequest, InitializeResponse, NewCredential, NewUserRequest,
    NewUserResponse, SUPPORTED_CREDENTIAL_TYPES_KEY, Statements, UpdateUserRequest,
    UsernameMetadata,
};
pub use error::{Error, ErrorKind, Result};
pub use secret::Secret;
pub use server::{ServeError, Server, serve};

/// Re-exported so plugins use the same version as the runtime.
pub use time;
/// Re-exported so plugins use the same version as the runtime.
pub use tracing;

/// The README's examples, compiled as doctests.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
