//! The database protocol v5 as a Rust trait, with its request and response types.

use std::future::Future;

use time::OffsetDateTime;

use crate::{ConfigMap, Error, Result, Secret};

/// The key of the stored config that lists the credential types a connection supports.
pub const SUPPORTED_CREDENTIAL_TYPES_KEY: &str = "supported_credential_types";

/// A database plugin instance: one per configured connection (per multiplex id).
///
/// Every method may be called concurrently with the others (the host does), so the state a
/// plugin keeps after [`Database::initialize`] lives behind interior mutability.
///
/// Errors become gRPC `Internal` (or the [`Error`]'s kind) with the Go SDK's prefixes
/// (`unable to create new user: …`); their text must not contain secrets.
pub trait Database: Send + Sync + 'static {
    /// The plugin's type name, e.g. `"pgx"` for PostgreSQL; used by the host for metrics and
    /// logs. Called before `initialize`, with a 1 s deadline.
    fn type_name(&self) -> impl Future<Output = Result<String>> + Send;

    /// Sets up the connection from the operator's configuration. With
    /// `verify_connection` false, no connection may be made here. Returns the configuration
    /// the host stores and feeds back on the next `initialize`.
    fn initialize(
        &self,
        req: InitializeRequest,
    ) -> impl Future<Output = Result<InitializeResponse>> + Send;

    /// Creates a user with the given credential; returns its name.
    fn new_user(&self, req: NewUserRequest)
    -> impl Future<Output = Result<NewUserResponse>> + Send;

    /// Changes a user's password, public key and/or expiration.
    fn update_user(&self, req: UpdateUserRequest) -> impl Future<Output = Result<()>> + Send;

    /// Removes a user. Must succeed when the user does not exist.
    fn delete_user(&self, req: DeleteUserRequest) -> impl Future<Output = Result<()>> + Send;

    /// Closes the connection; the instance is dropped afterwards. The default does nothing.
    fn close(&self) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }
}

/// Makes [`Database`] instances, one per multiplex id.
///
/// Any `Fn() -> D` closure is a factory; so is `D::default` for a `D: Default`.
pub trait DatabaseFactory: Send + Sync + 'static {
    /// The instance type.
    type Database: Database;

    /// Makes a fresh, uninitialized instance.
    fn create(&self) -> Result<Self::Database>;
}

impl<F, D> DatabaseFactory for F
where
    F: Fn() -> D + Send + Sync + 'static,
    D: Database,
{
    type Database = D;

    fn create(&self) -> Result<D> {
        Ok(self())
    }
}

/// The arguments of [`Database::initialize`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct InitializeRequest {
    /// The connection configuration.
    pub config: ConfigMap,
    /// Whether to connect now to check the configuration.
    pub verify_connection: bool,
}

impl InitializeRequest {
    /// A request with this config.
    pub fn new(config: ConfigMap, verify_connection: bool) -> Self {
        InitializeRequest {
            config,
            verify_connection,
        }
    }
}

/// The result of [`Database::initialize`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct InitializeResponse {
    /// The configuration to store; it must hold everything a later `initialize` needs.
    pub config: ConfigMap,
}

impl InitializeResponse {
    /// A response storing `config`.
    pub fn new(config: ConfigMap) -> Self {
        InitializeResponse { config }
    }

    /// Records the credential types this connection supports under
    /// `supported_credential_types`, as the Go SDK's `SetSupportedCredentialTypes` does.
    #[must_use]
    pub fn with_supported_credential_types(mut self, types: &[CredentialType]) -> Self {
        self.config.insert(
            SUPPORTED_CREDENTIAL_TYPES_KEY.to_owned(),
            serde_json::Value::Array(types.iter().map(|t| t.as_str().into()).collect()),
        );
        self
    }
}

/// The kinds of credential a user can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialType {
    /// A password (wire value 0).
    Password,
    /// An RSA key pair; the plugin receives the public key (wire value 1).
    RsaPrivateKey,
    /// A client certificate; the plugin receives its subject (wire value 2).
    ClientCertificate,
}

impl CredentialType {
    /// The name used in configs: `password`, `rsa_private_key`, `client_certificate`.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialType::Password => "password",
            CredentialType::RsaPrivateKey => "rsa_private_key",
            CredentialType::ClientCertificate => "client_certificate",
        }
    }

    pub(crate) fn from_wire(value: i32) -> Result<Self> {
        match value {
            0 => Ok(CredentialType::Password),
            1 => Ok(CredentialType::RsaPrivateKey),
            2 => Ok(CredentialType::ClientCertificate),
            n => Err(Error::invalid_argument(format!(
                "unknown credential type {n}: expected 0 (password), 1 (rsa_private_key) or 2 (client_certificate)"
            ))),
        }
    }
}

/// The credential of a new user.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum NewCredential {
    /// The password the host generated.
    Password(Secret),
    /// A PEM `PUBLIC KEY` block (PKIX) of the user's RSA key.
    RsaPublicKey(Vec<u8>),
    /// The distinguished name of the user's certificate.
    ClientCertificate {
        /// The certificate subject.
        subject: String,
    },
}

impl NewCredential {
    /// Which type of credential this is.
    pub fn credential_type(&self) -> CredentialType {
        match self {
            NewCredential::Password(_) => CredentialType::Password,
            NewCredential::RsaPublicKey(_) => CredentialType::RsaPrivateKey,
            NewCredential::ClientCertificate { .. } => CredentialType::ClientCertificate,
        }
    }
}

/// The role and token names a username is built from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UsernameMetadata {
    /// The display name of the token asking for credentials.
    pub display_name: String,
    /// The role the credentials are for.
    pub role_name: String,
}

impl UsernameMetadata {
    /// Metadata with these names.
    pub fn new(display_name: impl Into<String>, role_name: impl Into<String>) -> Self {
        UsernameMetadata {
            display_name: display_name.into(),
            role_name: role_name.into(),
        }
    }
}

/// An ordered list of statements; placeholders like `{{username}}` are the plugin's to fill.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Statements {
    /// The commands, as the operator wrote them in the role.
    pub commands: Vec<String>,
}

impl Statements {
    /// Statements with these commands.
    pub fn new(commands: Vec<String>) -> Self {
        Statements { commands }
    }

    /// Whether there are no commands.
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }
}

/// The arguments of [`Database::new_user`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NewUserRequest {
    /// Where the username comes from.
    pub username_config: UsernameMetadata,
    /// The creation statements.
    pub statements: Statements,
    /// Statements to run when creation fails.
    pub rollback_statements: Statements,
    /// The credential to give the user.
    pub credential: NewCredential,
    /// When the user should expire (UTC). Year 1 when the host sends none.
    pub expiration: OffsetDateTime,
}

/// The result of [`Database::new_user`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NewUserResponse {
    /// The name of the created user.
    pub username: String,
}

impl NewUserResponse {
    /// A response naming the created user.
    pub fn new(username: impl Into<String>) -> Self {
        NewUserResponse {
            username: username.into(),
        }
    }
}

/// A password change.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ChangePassword {
    /// The new password (never empty).
    pub new_password: Secret,
    /// Statements to run, e.g. a role's rotation statements.
    pub statements: Statements,
}

/// A public key change.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ChangePublicKey {
    /// The new PEM `PUBLIC KEY` block (never empty).
    pub new_public_key: Vec<u8>,
    /// Statements to run.
    pub statements: Statements,
}

/// An expiration change.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ChangeExpiration {
    /// The new expiration (UTC).
    pub new_expiration: OffsetDateTime,
    /// Statements to run, e.g. a role's renew statements.
    pub statements: Statements,
}

/// The arguments of [`Database::update_user`]; at least one change is present.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UpdateUserRequest {
    /// The user to change.
    pub username: String,
    /// The credential type of the user.
    pub credential_type: CredentialType,
    /// A new password.
    pub password: Option<ChangePassword>,
    /// A new public key.
    pub public_key: Option<ChangePublicKey>,
    /// A new expiration.
    pub expiration: Option<ChangeExpiration>,
    /// Vault only: the current password of a self-managed static account.
    pub self_managed_password: Option<Secret>,
}

/// The arguments of [`Database::delete_user`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DeleteUserRequest {
    /// The user to remove.
    pub username: String,
    /// The revocation statements.
    pub statements: Statements,
}
