//! The original database plugin interface (protocol v4, app protocol versions 3 and 4).
//!
//! `Type`, `CreateUser(statements, usernameConfig, expiration) -> (username, password)`,
//! `RenewUser`, `RevokeUser`, `RotateRootCredentials(statements) -> config`,
//! `Init(config, verifyConnection) -> saveConfig` and `Close`, plus the static-account
//! methods `SetCredentials` and `GenerateCredentials`. Current Vault and OpenBao still load
//! such plugins (after trying v5), and launch them without AutoMTLS: the plugin fetches its
//! TLS certificate by unwrapping a token through the host's HTTP API before it prints its
//! handshake line. [`Server`] does all of that; the TLS settings for that one HTTPS call come
//! from [`UnwrapTlsConfig`], the `VAULT_*`/`BAO_*` environment and the plugin's arguments.
//!
//! ```no_run
//! use dbplugin::v4::{Database, Statements, UsernameConfig};
//! use dbplugin::{ConfigMap, Result, Secret};
//! use dbplugin::time::OffsetDateTime;
//!
//! #[derive(Default)]
//! struct MyDb;
//!
//! impl Database for MyDb {
//!     async fn type_name(&self) -> Result<String> { Ok("mydb".into()) }
//!     async fn init(&self, config: ConfigMap, _verify: bool) -> Result<ConfigMap> { Ok(config) }
//!     async fn create_user(&self, _s: Statements, u: UsernameConfig, _e: OffsetDateTime)
//!         -> Result<(String, Secret)> {
//!         Ok((format!("v-{}", u.role_name), self.generate_credentials().await?))
//!     }
//!     async fn renew_user(&self, _s: Statements, _u: String, _e: OffsetDateTime) -> Result<()> { Ok(()) }
//!     async fn revoke_user(&self, _s: Statements, _u: String) -> Result<()> { Ok(()) }
//!     async fn rotate_root_credentials(&self, _s: Vec<String>) -> Result<ConfigMap> {
//!         Err(dbplugin::Error::unimplemented("root rotation is not supported"))
//!     }
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     dbplugin::v4::Server::new(MyDb::default).version(env!("CARGO_PKG_VERSION")).serve()
//! }
//! ```

use std::future::Future;
use std::process::ExitCode;

use time::OffsetDateTime;

use crate::{ConfigMap, Error, Result, Secret};

pub use crate::server::unwrap::UnwrapTlsConfig;

/// The statements of a role, by operation; placeholders are the plugin's to fill.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Statements {
    /// Creation statements (`{{name}}`, `{{password}}`, `{{expiration}}`).
    pub creation: Vec<String>,
    /// Revocation statements (`{{name}}`).
    pub revocation: Vec<String>,
    /// Statements to run when creation fails.
    pub rollback: Vec<String>,
    /// Renewal statements (`{{name}}`, `{{expiration}}`).
    pub renewal: Vec<String>,
    /// Rotation statements of static accounts (`{{name}}`, `{{password}}`).
    pub rotation: Vec<String>,
}

impl Statements {
    /// Statements with only creation commands.
    pub fn creation(commands: Vec<String>) -> Self {
        Statements {
            creation: commands,
            ..Default::default()
        }
    }
}

/// Where a generated username comes from.
pub type UsernameConfig = crate::UsernameMetadata;

/// A static account's credentials as `SetCredentials` receives them.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StaticUserConfig {
    /// The account.
    pub username: String,
    /// The password to set.
    pub password: Secret,
    /// Whether to create the account if it does not exist.
    pub create: bool,
}

/// A database plugin of the original interface.
///
/// As with the v5 [`crate::Database`], methods may be called concurrently. Errors reach the
/// host with their text (gRPC `Unknown`, as the Go server sends them), so they must not
/// contain secrets.
pub trait Database: Send + Sync + 'static {
    /// The plugin's type name.
    fn type_name(&self) -> impl Future<Output = Result<String>> + Send;

    /// Sets up the connection; returns the configuration to store.
    fn init(
        &self,
        config: ConfigMap,
        verify_connection: bool,
    ) -> impl Future<Output = Result<ConfigMap>> + Send;

    /// Creates a user, generating its name and password; returns both.
    fn create_user(
        &self,
        statements: Statements,
        username_config: UsernameConfig,
        expiration: OffsetDateTime,
    ) -> impl Future<Output = Result<(String, Secret)>> + Send;

    /// Extends a user's expiration.
    fn renew_user(
        &self,
        statements: Statements,
        username: String,
        expiration: OffsetDateTime,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Removes a user.
    fn revoke_user(
        &self,
        statements: Statements,
        username: String,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Changes the root password; returns the whole configuration with the new password.
    fn rotate_root_credentials(
        &self,
        statements: Vec<String>,
    ) -> impl Future<Output = Result<ConfigMap>> + Send;

    /// Sets a static account's password; returns the username and password. The default
    /// answers `Unimplemented`, which the host reports as "database plugin does not support
    /// Static Accounts" (and, for root rotation, falls back to `rotate_root_credentials`).
    fn set_credentials(
        &self,
        statements: Statements,
        static_user: StaticUserConfig,
    ) -> impl Future<Output = Result<(String, Secret)>> + Send {
        let _ = (statements, static_user);
        async {
            Err(Error::unimplemented(
                "SetCredentials is not implemented by this plugin",
            ))
        }
    }

    /// A new password. The host calls this before every `CreateUser`; the default makes the
    /// Go SDK's credsutil shape: `A1a-` and 16 base62 characters.
    fn generate_credentials(&self) -> impl Future<Output = Result<Secret>> + Send {
        async { Ok(crate::toolkit::credentials::generate_password()) }
    }

    /// Closes the connection. The default does nothing.
    fn close(&self) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }
}

/// Serves a v4 plugin: one instance per process (the v4 protocol has no multiplexing).
///
/// Transport, as go-plugin with Vault's TLS provider selects it: the TLS-unwrap bootstrap
/// unless `BAO_`/`VAULT_PLUGIN_AUTOMTLS_ENABLED` or `..._METADATA_MODE` is `true`; otherwise
/// AutoMTLS when the host passed `PLUGIN_CLIENT_CERT`, else plaintext (metadata mode).
#[derive(Debug)]
pub struct Server<F> {
    factory: F,
    version: String,
    tls: UnwrapTlsConfig,
}

impl<F, D> Server<F>
where
    F: Fn() -> D + Send + Sync + 'static,
    D: Database,
{
    /// A server for the instance `factory` makes.
    pub fn new(factory: F) -> Self {
        Server {
            factory,
            version: String::new(),
            tls: UnwrapTlsConfig::default(),
        }
    }

    /// The version reported to the host, as `v<semver>`.
    #[must_use]
    pub fn version(mut self, version: impl AsRef<str>) -> Self {
        self.version = crate::server::canonical_version(version.as_ref());
        self
    }

    /// TLS settings for the unwrap call to the host's API (the original `Serve(plugin,
    /// tlsConfig)`); the environment and the plugin's arguments add to them.
    #[must_use]
    pub fn unwrap_tls(mut self, tls: UnwrapTlsConfig) -> Self {
        self.tls = tls;
        self
    }

    /// Runs the process; see [`crate::Server::serve`].
    pub fn serve(self) -> ExitCode {
        let Server {
            factory,
            version,
            tls,
        } = self;
        crate::server::serve_process(crate::server::App {
            versions: &[3, 4],
            version,
            multiplexing: false,
            unwrap: Some(tls),
            add_services: Box::new(move |routes| {
                routes.add_service(
                    dbplugin_proto::dbplugin::v4::database_server::DatabaseServer::new(
                        crate::server::v4::DatabaseService::new(
                            factory(),
                            crate::server::default_secret_keys(),
                        ),
                    ),
                );
            }),
        })
    }
}
