//! Serving a plugin: the go-plugin process protocol around the database service.

mod call;
pub(crate) mod env;
mod io;
mod listener;
mod process;
mod secrets;
mod services;
pub(crate) mod tls;
pub(crate) mod unwrap;
pub(crate) mod v4;
pub(crate) mod v5;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use dbplugin_proto::dbplugin::v5::database_server::DatabaseServer;
use dbplugin_proto::logical::plugin_version_server::PluginVersionServer;
use dbplugin_proto::plugin::{
    grpc_broker_server::GrpcBrokerServer, grpc_controller_server::GrpcControllerServer,
    grpc_stdio_server::GrpcStdioServer,
};
use dbplugin_proto::pluginutil::multiplexing::plugin_multiplexing_server::PluginMultiplexingServer;

use crate::DatabaseFactory;
use env::LaunchEnv;
use services::Shutdown;

#[cfg(feature = "testkit")]
pub(crate) use env::{COOKIE_KEY, COOKIE_VALUE};

/// How long `Shutdown` waits for connections to finish before the process stops anyway
/// (the host kills it after 2 s).
const SHUTDOWN_GRACE: Duration = Duration::from_millis(800);

/// How long a client may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves a database plugin: the configuration of one plugin process.
///
/// ```no_run
/// # use dbplugin::{Database, Result, InitializeRequest, InitializeResponse, NewUserRequest,
/// #     NewUserResponse, UpdateUserRequest, DeleteUserRequest};
/// # #[derive(Default)] struct MyDb;
/// # impl Database for MyDb {
/// #     async fn type_name(&self) -> Result<String> { Ok("mydb".into()) }
/// #     async fn initialize(&self, r: InitializeRequest) -> Result<InitializeResponse> { Ok(InitializeResponse::new(r.config)) }
/// #     async fn new_user(&self, _: NewUserRequest) -> Result<NewUserResponse> { Ok(NewUserResponse::new("u")) }
/// #     async fn update_user(&self, _: UpdateUserRequest) -> Result<()> { Ok(()) }
/// #     async fn delete_user(&self, _: DeleteUserRequest) -> Result<()> { Ok(()) }
/// # }
/// fn main() -> std::process::ExitCode {
///     dbplugin::Server::new(MyDb::default)
///         .version(env!("CARGO_PKG_VERSION"))
///         .serve()
/// }
/// ```
#[derive(Debug)]
pub struct Server<F> {
    factory: F,
    version: String,
    multiplexing: bool,
    secret_keys: Vec<String>,
}

/// Serves `factory` with the default settings; see [`Server`].
pub fn serve<F: DatabaseFactory>(factory: F) -> ExitCode {
    Server::new(factory).serve()
}

/// Why serving stopped with an error (logged by [`Server::serve`] before it exits 1).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The launch environment is not one a host produces.
    #[error("invalid plugin environment: {0}")]
    Environment(String),
    /// The listener could not be bound.
    #[error("cannot listen: {0}")]
    Listen(#[source] std::io::Error),
    /// TLS could not be set up.
    #[error("cannot set up TLS: {0}")]
    Tls(String),
    /// The handshake line could not be written.
    #[error("cannot write the handshake line: {0}")]
    Handshake(#[source] std::io::Error),
    /// The TLS-unwrap bootstrap failed (v4 plugins).
    #[error("{0}")]
    Unwrap(String),
    /// The gRPC server failed.
    #[error("gRPC server failed: {0}")]
    Transport(#[source] tonic::transport::Error),
}

/// `1.2.3` → `v1.2.3`: the host canonicalises registered versions with a `v`.
pub(crate) fn canonical_version(v: &str) -> String {
    let v = v.trim();
    if v.is_empty() || v.starts_with('v') {
        v.to_owned()
    } else {
        format!("v{v}")
    }
}

impl<F: DatabaseFactory> Server<F> {
    /// A server making one instance per multiplex id with `factory`.
    pub fn new(factory: F) -> Self {
        Server {
            factory,
            version: String::new(),
            multiplexing: true,
            secret_keys: default_secret_keys(),
        }
    }

    /// Config keys whose values are secret (default: `password`, `private_key`): they are
    /// replaced by `[key]` (`[password]` for the password) in every error the plugin returns,
    /// along with the password as it appears URL-escaped, the rendered `connection_url`, and
    /// the passwords of the request being answered.
    #[must_use]
    pub fn secret_config_keys<I, S>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.secret_keys = keys.into_iter().map(Into::into).collect();
        self
    }

    /// The version reported to the host's version probe, as `v<semver>` (a missing `v` is
    /// added). Empty (the default) reports no version.
    #[must_use]
    pub fn version(mut self, version: impl AsRef<str>) -> Self {
        self.version = canonical_version(version.as_ref());
        self
    }

    /// Whether one process serves many connections (default `true`). Off, the plugin offers
    /// only protocol 5, does not register the multiplexing service, and one instance serves
    /// every call, as the Go SDK's `Serve` does.
    #[must_use]
    pub fn multiplexing(mut self, enabled: bool) -> Self {
        self.multiplexing = enabled;
        self
    }

    /// Runs the plugin process to completion and returns its exit status: checks the magic
    /// cookie (printing go-plugin's message and exiting 1 without it), installs the hclog
    /// logger (`tracing` events become JSON lines on stderr at their level; the threshold is
    /// `DBPLUGIN_LOG_LEVEL`, default `debug`), builds a Tokio runtime and serves until the
    /// host calls `Shutdown` (or SIGTERM); exit status 0 then.
    pub fn serve(self) -> ExitCode {
        let Server {
            factory,
            version,
            multiplexing,
            secret_keys,
        } = self;
        serve_process(App {
            versions: if multiplexing { &[5, 6] } else { &[5] },
            version,
            multiplexing,
            unwrap: None,
            add_services: Box::new(move |routes| {
                routes.add_service(DatabaseServer::new(v5::DatabaseService::new(
                    factory,
                    multiplexing,
                    secret_keys,
                )));
            }),
        })
    }
}

/// `password` and `private_key`.
pub(crate) fn default_secret_keys() -> Vec<String> {
    secrets::DEFAULT_SECRET_KEYS
        .iter()
        .map(|k| (*k).to_owned())
        .collect()
}

/// What differs between the v5 and v4 processes.
pub(crate) struct App {
    /// App protocol versions offered.
    pub(crate) versions: &'static [u32],
    /// Reported by the version probe.
    pub(crate) version: String,
    /// Whether to register the multiplexing service.
    pub(crate) multiplexing: bool,
    /// `Some` for v4 plugins: Vault's TLS provider (the unwrap bootstrap) with these settings.
    pub(crate) unwrap: Option<unwrap::UnwrapTlsConfig>,
    /// Adds the database service.
    pub(crate) add_services: Box<dyn FnOnce(&mut tonic::service::RoutesBuilder) + Send>,
}

/// The whole process: cookie, logger, runtime, [`run`], exit status.
pub(crate) fn serve_process(app: App) -> ExitCode {
    if !LaunchEnv::cookie_ok(&|k| std::env::var_os(k)) {
        use std::io::Write as _;
        let _ = std::io::stderr().write_all(env::NOT_A_PLUGIN_MESSAGE.as_bytes());
        return ExitCode::from(1);
    }
    crate::logging::install();
    process::install_panic_hook();
    if let Err(e) = process::lock_memory_if_asked() {
        tracing::error!("{e}");
        return ExitCode::from(1);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(run(app));
    runtime.shutdown_timeout(Duration::from_millis(100));
    process::end_children();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(1)
        }
    }
}

/// How the listener is secured.
enum Transport {
    AutoMtls(Arc<rustls::ServerConfig>, String),
    Unwrapped(Arc<rustls::ServerConfig>),
    Plaintext,
}

async fn select_transport(launch: &LaunchEnv, app: &App) -> Result<Transport, ServeError> {
    if let Some(tls) = &app.unwrap
        && !launch.auto_mtls_enabled
        && !launch.metadata_mode
    {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let config = tls
            .clone()
            .with_env_and_args(&|k| std::env::var_os(k), &args);
        let material = unwrap::fetch_server_tls(&|k| std::env::var_os(k), &config)
            .await
            .map_err(ServeError::Unwrap)?;
        let server = tls::unwrapped_server_config(&material).map_err(ServeError::Tls)?;
        return Ok(Transport::Unwrapped(server));
    }
    match &launch.client_cert_pem {
        Some(pem) => {
            let client_cert = tls::parse_client_cert(pem).map_err(ServeError::Tls)?;
            let identity = tls::generate_identity().map_err(ServeError::Tls)?;
            let config = tls::server_config(&identity, client_cert).map_err(ServeError::Tls)?;
            let field = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&identity.cert);
            Ok(Transport::AutoMtls(config, field))
        }
        None => Ok(Transport::Plaintext),
    }
}

/// Serves on the current Tokio runtime until the host asks for `Shutdown`.
async fn run(app: App) -> Result<(), ServeError> {
    let launch = LaunchEnv::read(&|k| std::env::var_os(k)).map_err(ServeError::Environment)?;
    for piece in &launch.invalid_versions {
        tracing::error!("server sent invalid plugin version {piece:?}");
    }
    let app_version = launch.negotiate(app.versions);

    // The unwrap bootstrap runs before anything is bound or printed, as go-plugin does.
    let transport = select_transport(&launch, &app).await?;
    let listener = listener::bind(&launch).await.map_err(ServeError::Listen)?;
    let (tls, cert_field) = match transport {
        Transport::AutoMtls(config, field) => (Some(config), field),
        Transport::Unwrapped(config) => (Some(config), String::new()),
        Transport::Plaintext => (None, String::new()),
    };

    let shutdown = Shutdown::new();
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status("plugin", tonic_health::ServingStatus::Serving)
        .await;
    let mut routes = tonic::service::Routes::builder();
    routes
        .add_service(health_service)
        .add_service(GrpcControllerServer::new(services::Controller {
            shutdown: shutdown.clone(),
        }))
        .add_service(GrpcStdioServer::new(services::Stdio {
            shutdown: shutdown.clone(),
        }))
        .add_service(GrpcBrokerServer::new(services::Broker {
            shutdown: shutdown.clone(),
        }))
        .add_service(PluginVersionServer::new(services::Version {
            version: app.version,
        }));
    (app.add_services)(&mut routes);
    if app.multiplexing {
        routes.add_service(PluginMultiplexingServer::new(services::Multiplexing));
    }

    let (network, address) = listener.describe();
    let socket_path = listener.socket_path().map(|p| p.to_path_buf());
    let incoming = io::incoming(
        listener,
        tls.map(tokio_rustls::TlsAcceptor::from),
        HANDSHAKE_TIMEOUT,
        launch.multiplex_grpc,
        shutdown.wait(),
    );

    // go-plugin appends a 7th field whenever PLUGIN_MULTIPLEX_GRPC is set at all.
    let mux_field = if launch.multiplex_grpc_set {
        "|true"
    } else {
        ""
    };
    write_handshake(&format!(
        "1|{app_version}|{network}|{address}|grpc|{cert_field}{mux_field}\n"
    ))
    .map_err(ServeError::Handshake)?;
    tracing::debug!(
        protocol = app_version,
        network,
        address = %address,
        metadata_mode = launch.metadata_mode,
        "plugin listening"
    );
    ignore_sigint();
    stop_on_sigterm(shutdown.clone());
    process::exit_with_parent(shutdown.clone());
    process::release_memory_when_idle();

    let stopped = shutdown.wait();
    let server = tonic::transport::Server::builder()
        .add_routes(routes.routes())
        .serve_with_incoming_shutdown(incoming.stream, stopped);
    let parent = process::parent_pid();
    let grace = {
        let stopped = shutdown.wait();
        async move {
            stopped.await;
            // With the host gone nobody is left to answer: leave at once.
            if process::parent_pid() == parent {
                tokio::time::sleep(SHUTDOWN_GRACE).await;
            }
        }
    };
    let result = tokio::select! {
        r = server => r.map_err(ServeError::Transport),
        () = grace => Ok(()),
    };
    drop(incoming.guard);
    if let Some(path) = socket_path {
        let _ = std::fs::remove_file(path);
    }
    result
}

fn write_handshake(line: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    out.write_all(line.as_bytes())?;
    out.flush()
}

/// go-plugin ignores SIGINT so that a Ctrl-C at the host's terminal does not kill plugins
/// before the host shuts them down.
fn ignore_sigint() {
    if let Ok(mut sigint) =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
    {
        tokio::spawn(async move {
            while sigint.recv().await.is_some() {
                tracing::trace!("ignoring SIGINT; the host shuts plugins down");
            }
        });
    }
}

/// The host never sends SIGTERM, but an operator or a service manager may: stop cleanly
/// (socket file removed) instead of dying mid-call.
fn stop_on_sigterm(shutdown: Shutdown) {
    if let Ok(mut sigterm) =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    {
        tokio::spawn(async move {
            if sigterm.recv().await.is_some() {
                tracing::info!("SIGTERM received; shutting down");
                shutdown.trigger();
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::canonical_version;

    #[test]
    fn versions_get_a_v() {
        assert_eq!(canonical_version("1.2.3"), "v1.2.3");
        assert_eq!(canonical_version("v1.2.3"), "v1.2.3");
        assert_eq!(canonical_version(""), "");
    }
}
