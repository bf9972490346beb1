//! The `#[database_plugin]` attribute; use it through the `dbplugin` crate, which
//! re-exports it and documents it.
//!
//! The crate is thin: `database_plugin` converts to `proc_macro2` and calls
//! `expand::database_plugin`, which runs four phases, one module each: `attr` (the
//! arguments), `model` (which RPC each method implements, in which shape), `validate`
//! (rules across methods) and `codegen` (the generated code, reading the model only).
#![doc(test(no_crate_inject, attr(deny(warnings))))]

use proc_macro::TokenStream;

mod attr;
mod codegen;
mod expand;
mod model;
#[cfg(test)]
mod snapshots;
mod util;
mod validate;

/// Turns an inherent `impl` block into a database secrets-engine plugin (database plugin
/// protocol v5, as Vault and OpenBao speak it, or the original v4 interface: see
/// [below](#the-original-v4-interface)).
///
/// Write a struct and one annotated `impl` block whose `async` methods are named after the
/// protocol's RPCs; the macro implements `dbplugin::Database` for the struct by calling them, and
/// adds `serve()` to call from `main`. The smallest complete plugin:
///
/// ```no_run
/// use dbplugin::{database_plugin, ConfigMap, DeleteUserRequest, NewUserRequest, Result};
///
/// #[derive(Default)]
/// struct MyDb;
///
/// #[database_plugin(name = "mydb")]
/// impl MyDb {
///     async fn initialize(&self, _config: ConfigMap, _verify_connection: bool) -> Result<()> {
///         Ok(())
///     }
///     async fn new_user(&self, req: NewUserRequest) -> Result<String> {
///         Ok(format!("v-{}", req.username_config.role_name))
///     }
///     async fn delete_user(&self, _req: DeleteUserRequest) -> Result<()> {
///         Ok(())
///     }
/// }
///
/// fn main() -> std::process::ExitCode {
///     MyDb::serve()
/// }
/// ```
///
/// # Arguments
///
/// All arguments are optional except that the type name must come from `name` or from a
/// `type_name` method. Each may be given once.
///
/// | argument | default | meaning |
/// |---|---|---|
/// | `name = "mydb"` | — | The plugin's type name, answered to the host's `Type` RPC. Conflicts with a `type_name` method. |
/// | `version = "1.2.3"` | the plugin crate's `CARGO_PKG_VERSION` | The version reported to the host's version probe, as `v1.2.3` (a leading `v` is accepted). Must be a semantic version. |
/// | `credential_types(password, rsa_private_key, client_certificate)` | `credential_types(password)` | The credential types the plugin supports; `initialize` stores them under `supported_credential_types` in the config it returns. |
/// | `multiplexing = false` | `true` | Whether one process serves many connections (one instance per multiplex id). `false` serves every connection with one instance, as the Go SDK's `Serve` does. |
/// | `main` | off | Also generates `fn main() -> ExitCode { Self::serve() }`. Use it only on an impl at the crate root of a binary. |
/// | `crate = "::dbplugin"` | `::dbplugin` | The path of the runtime crate, when it is renamed or re-exported (`crate = "my_sdk::dbplugin"`). |
///
/// # Methods
///
/// Every method of the annotated impl is one of the following (helpers belong in another
/// `impl` block). All RPC methods are `async fn`s taking `&self` (the host calls an
/// instance concurrently: keep state behind a `Mutex`), and return `Result<T, E>` with
/// `E: Into<dbplugin::Error>` (e.g. `dbplugin::Result<T>`). Their futures must be
/// `Send`. Errors reach the host with the Go SDK's prefixes (`unable to create new user: …`).
///
/// | method | required | shapes |
/// |---|---|---|
/// | `initialize` | yes | `async fn initialize(&self, config: C) -> Result<R>` or `async fn initialize(&self, config: C, verify_connection: bool) -> Result<R>` |
/// | `new_user` | yes | `async fn new_user(&self, req: NewUserRequest) -> Result<NewUserResponse>`; the `Ok` type may also be `String` (the username) |
/// | `delete_user` | yes | `async fn delete_user(&self, req: DeleteUserRequest) -> Result<()>`; must succeed when the user does not exist |
/// | `update_user` | no | `async fn update_user(&self, req: UpdateUserRequest) -> Result<()>`. Without it, `UpdateUser` answers `Unimplemented` (which the host treats as success when rolling back a static-account rotation). |
/// | `close` | no | `async fn close(&self) -> Result<()>`. Without it, `Close` does nothing (the instance is dropped). |
/// | `type_name` | if no `name` | `async fn type_name(&self) -> Result<String>` (or `Result<&'static str>`) |
/// | `#[constructor]` | no | `#[constructor] fn new() -> Self` or `-> Result<Self, E>`: makes each instance. Without it, instances come from `Default`. A failing constructor fails the host's call with `unable to create database instance: …`. |
///
/// **The config of `initialize`.** `C` is `ConfigMap` (the raw
/// map) or any type implementing `serde::Deserialize`. A typed config is decoded before
/// your method runs; a config that does not decode fails `Initialize` with
/// `InvalidArgument` and a message naming the key and the expected type, never the value
/// (`` `max_open_connections`: expected a non-negative integer, got a string ``). Strings
/// are accepted where numbers or booleans are expected, since the Vault CLI sends
/// `key=value` pairs as strings. Unknown keys are ignored unless the type says
/// `#[serde(deny_unknown_fields)]`.
///
/// **The result of `initialize`** is the config the host stores and passes back to the
/// next `initialize`: `R` is `()` (store the config as received, the usual choice, as it
/// keeps keys the plugin does not read), a `serde::Serialize` type serializing to a map
/// (e.g. `ConfigMap` or your config type), or an
/// `InitializeResponse`. The credential types of
/// `credential_types(...)` are recorded in it under `supported_credential_types`; an
/// `InitializeResponse` that already has that key keeps its own.
///
/// # What it generates
///
/// The code the macro writes for the example above is equivalent to this hand-written code
/// (the real expansion goes through hidden helpers in `dbplugin::__private` that give the
/// error messages described above):
///
/// ```no_run
/// use dbplugin::{
///     ConfigMap, CredentialType, Database, DatabaseFactory, DeleteUserRequest,
///     InitializeRequest, InitializeResponse, NewUserRequest, NewUserResponse, Result,
///     Server, UpdateUserRequest,
/// };
///
/// #[derive(Default)]
/// struct MyDb;
///
/// impl MyDb { // your impl block, unchanged
///     async fn initialize(&self, _config: ConfigMap, _verify_connection: bool) -> Result<()> {
///         Ok(())
///     }
///     async fn new_user(&self, req: NewUserRequest) -> Result<String> {
///         Ok(format!("v-{}", req.username_config.role_name))
///     }
///     async fn delete_user(&self, _req: DeleteUserRequest) -> Result<()> {
///         Ok(())
///     }
/// }
///
/// impl Database for MyDb {
///     async fn type_name(&self) -> Result<String> {
///         Ok("mydb".into()) // from `name = "mydb"`
///     }
///     async fn initialize(&self, req: InitializeRequest) -> Result<InitializeResponse> {
///         let received = req.config.clone();
///         let config: ConfigMap = req.config; // a typed config is decoded here
///         MyDb::initialize(self, config, req.verify_connection).await?;
///         Ok(InitializeResponse::new(received) // `()`: store the config as received
///             .with_supported_credential_types(&[CredentialType::Password]))
///     }
///     async fn new_user(&self, req: NewUserRequest) -> Result<NewUserResponse> {
///         Ok(NewUserResponse::new(MyDb::new_user(self, req).await?))
///     }
///     async fn update_user(&self, _req: UpdateUserRequest) -> Result<()> {
///         Err(dbplugin::Error::unimplemented("this plugin does not implement update_user"))
///     }
///     async fn delete_user(&self, req: DeleteUserRequest) -> Result<()> {
///         MyDb::delete_user(self, req).await
///     }
///     // `close`: the trait's default, which does nothing.
/// }
///
/// impl MyDb {
///     pub fn server() -> Server<impl DatabaseFactory<Database = Self>> {
///         Server::new(MyDb::default)                   // or the `#[constructor]`
///             .version(env!("CARGO_PKG_VERSION"))     // or `version = "..."`
///             .multiplexing(true)                     // or `multiplexing = false`
///     }
///     pub fn serve() -> std::process::ExitCode {
///         Self::server().serve()
///     }
/// }
///
/// fn main() -> std::process::ExitCode { // what `main` generates
///     MyDb::serve()
/// }
/// ```
///
/// # A fuller example
///
/// A typed config, a constructor, every optional method and every argument (this one runs:
/// it calls the plugin through the generated `dbplugin::Database` impl, as the host would):
///
/// ```
/// use std::sync::Mutex;
///
/// use dbplugin::{
///     database_plugin, Database, DeleteUserRequest, Error, InitializeRequest, NewUserRequest,
///     NewUserResponse, Result, UpdateUserRequest,
/// };
///
/// #[derive(serde::Deserialize)]
/// struct Config {
///     connection_url: String,
///     #[serde(default)]
///     max_open_connections: Option<u32>,
/// }
///
/// struct Pool {
///     url: Mutex<Option<String>>,
/// }
///
/// #[database_plugin(
///     version = "1.2.3",
///     credential_types(password, rsa_private_key),
///     multiplexing = false,
///     crate = "::dbplugin",
/// )]
/// impl Pool {
///     #[constructor]
///     fn new() -> Self {
///         Pool { url: Mutex::new(None) }
///     }
///
///     async fn type_name(&self) -> Result<&'static str> {
///         Ok("pool")
///     }
///
///     async fn initialize(&self, config: Config, verify_connection: bool) -> Result<()> {
///         if verify_connection && !config.connection_url.starts_with("pool://") {
///             return Err(Error::invalid_argument("`connection_url` must start with pool://"));
///         }
///         let _ = config.max_open_connections;
///         *self.url.lock().unwrap() = Some(config.connection_url);
///         Ok(())
///     }
///
///     async fn new_user(&self, req: NewUserRequest) -> Result<NewUserResponse> {
///         Ok(NewUserResponse::new(format!("v-{}", req.username_config.role_name)))
///     }
///
///     async fn update_user(&self, _req: UpdateUserRequest) -> Result<()> {
///         Ok(())
///     }
///
///     async fn delete_user(&self, _req: DeleteUserRequest) -> Result<()> {
///         Ok(())
///     }
///
///     async fn close(&self) -> Result<()> {
///         self.url.lock().unwrap().take();
///         Ok(())
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let pool = Pool::new();
/// assert_eq!(pool.type_name().await.unwrap(), "pool");
///
/// let config = serde_json::json!({"connection_url": "pool://a", "password": "hunter2"});
/// let config = config.as_object().unwrap().clone();
/// let stored = Database::initialize(&pool, InitializeRequest::new(config, true)).await.unwrap();
/// assert_eq!(stored.config["password"], "hunter2"); // stored as received
/// assert_eq!(
///     stored.config["supported_credential_types"],
///     serde_json::json!(["password", "rsa_private_key"]),
/// );
///
/// let bad = serde_json::json!({"connection_url": "pool://a", "max_open_connections": "hunter2"});
/// let bad = bad.as_object().unwrap().clone();
/// let err = Database::initialize(&pool, InitializeRequest::new(bad, true)).await.unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "`max_open_connections`: expected a non-negative integer, got a string",
/// );
/// assert_eq!(err.kind(), dbplugin::ErrorKind::InvalidArgument);
/// # });
/// ```
///
/// # Errors at compile time
///
/// Each mistake gets one error, on the offending token, saying how to fix it; the impl
/// block is still emitted (with stand-ins for the generated items) so no other errors
/// follow. For example, a method named after no RPC:
///
/// ```compile_fail
/// # use dbplugin::{database_plugin, ConfigMap, DeleteUserRequest, NewUserRequest, Result};
/// # #[derive(Default)] struct MyDb;
/// #[database_plugin(name = "mydb")]
/// impl MyDb {
/// #   async fn initialize(&self, _c: ConfigMap) -> Result<()> { Ok(()) }
/// #   async fn delete_user(&self, _r: DeleteUserRequest) -> Result<()> { Ok(()) }
///     async fn new_usr(&self, req: NewUserRequest) -> Result<String> { // did you mean `new_user`?
///         Ok(req.username_config.role_name)
///     }
/// }
/// ```
///
/// # The original (v4) interface
///
/// The method set decides the protocol: an impl with the methods of the original database
/// plugin interface implements `dbplugin::v4::Database` instead, and its `serve()` runs
/// `dbplugin::v4::Server` (app protocol versions 3 and 4, one instance for the process,
/// the TLS-unwrap bootstrap Vault and OpenBao use for such plugins). `server()` returns
/// that server, so `Self::server().unwrap_tls(...).serve()` sets its TLS options. A plugin
/// serves one protocol: mixing v4 and v5 methods in one impl is an error on the methods of
/// the minority protocol.
///
/// | method | required | shapes |
/// |---|---|---|
/// | `init` | yes | `async fn init(&self, config: C) -> Result<R>` or `async fn init(&self, config: C, verify_connection: bool) -> Result<R>`; `C` as for `initialize` (`ConfigMap` or a `serde::Deserialize` type, decoded with the same messages), `R` is the config to store: `()` (the config as received), `ConfigMap` or a `serde::Serialize` type serializing to a map |
/// | `create_user` | yes | `async fn create_user(&self, statements: Statements, username_config: UsernameConfig, expiration: OffsetDateTime) -> Result<(String, Secret)>`: the plugin generates the username and password; the `Ok` type may also be `(String, String)` |
/// | `renew_user` | yes | `async fn renew_user(&self, statements: Statements, username: String, expiration: OffsetDateTime) -> Result<()>` |
/// | `revoke_user` | yes | `async fn revoke_user(&self, statements: Statements, username: String) -> Result<()>` |
/// | `rotate_root_credentials` | yes | `async fn rotate_root_credentials(&self, statements: Vec<String>) -> Result<ConfigMap>`: the whole config, with the new root password |
/// | `set_credentials` | no | `async fn set_credentials(&self, statements: Statements, static_user: StaticUserConfig) -> Result<(String, Secret)>` (or `(String, String)`). Without it, `SetCredentials` answers `Unimplemented` (the host reports "does not support Static Accounts"). |
/// | `generate_credentials` | no | `async fn generate_credentials(&self) -> Result<Secret>` (or `Result<String>`). Without it, the credsutil password (`dbplugin::toolkit::credentials::generate_password()`). |
/// | `close`, `type_name`, `#[constructor]` | as for v5 | A failing constructor ends the process with `unable to create database instance: …` (the v4 server makes its one instance infallibly). |
///
/// `Statements`, `UsernameConfig` and `StaticUserConfig` are in `dbplugin::v4`,
/// `OffsetDateTime` in `dbplugin::time`. The arguments `name`, `version`, `main` and
/// `crate` work as for v5; `credential_types` and `multiplexing` are v5 arguments and an
/// error on a v4 plugin.
///
/// ```no_run
/// use dbplugin::time::OffsetDateTime;
/// use dbplugin::toolkit::credentials::generate_password;
/// use dbplugin::v4::{Statements, UsernameConfig};
/// use dbplugin::{database_plugin, ConfigMap, Error, Result, Secret};
///
/// #[derive(Default)]
/// struct MyDb;
///
/// #[database_plugin(name = "mydb")]
/// impl MyDb {
///     async fn init(&self, _config: ConfigMap, _verify_connection: bool) -> Result<()> {
///         Ok(()) // store the config as received
///     }
///     async fn create_user(
///         &self,
///         _statements: Statements,
///         username_config: UsernameConfig,
///         _expiration: OffsetDateTime,
///     ) -> Result<(String, Secret)> {
///         Ok((format!("v-{}", username_config.role_name), generate_password()))
///     }
///     async fn renew_user(
///         &self,
///         _statements: Statements,
///         _username: String,
///         _expiration: OffsetDateTime,
///     ) -> Result<()> {
///         Ok(())
///     }
///     async fn revoke_user(&self, _statements: Statements, _username: String) -> Result<()> {
///         Ok(())
///     }
///     async fn rotate_root_credentials(&self, _statements: Vec<String>) -> Result<ConfigMap> {
///         Err(Error::unimplemented("root rotation is not supported"))
///     }
/// }
///
/// fn main() -> std::process::ExitCode {
///     MyDb::serve() // dbplugin::v4::Server::new(...).version(...).serve()
/// }
/// ```
///
/// Mixing the protocols is refused, naming the method of the other protocol already used:
///
/// ```compile_fail
/// # use dbplugin::{database_plugin, ConfigMap, DeleteUserRequest, NewUserRequest, Result};
/// # use dbplugin::v4::Statements;
/// # #[derive(Default)] struct MyDb;
/// #[database_plugin(name = "mydb")]
/// impl MyDb {
/// #   async fn initialize(&self, _c: ConfigMap) -> Result<()> { Ok(()) }
/// #   async fn new_user(&self, r: NewUserRequest) -> Result<String> { Ok(r.username_config.role_name) }
/// #   async fn delete_user(&self, _r: DeleteUserRequest) -> Result<()> { Ok(()) }
///     // `revoke_user` belongs to the original (v4) interface, but this impl already uses
///     // the v5 method `initialize` (line N); a plugin serves one protocol: ...
///     async fn revoke_user(&self, _s: Statements, _username: String) -> Result<()> {
///         Ok(())
///     }
/// }
/// ```
///
#[proc_macro_attribute]
pub fn database_plugin(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::database_plugin(args.into(), item.into()).into()
}
