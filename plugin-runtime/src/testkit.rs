//! A host for tests: launches a plugin binary the way Vault and OpenBao do and talks to it.
//!
//! It sets go-plugin's environment (magic cookie, `PLUGIN_PROTOCOL_VERSIONS`, ports), makes
//! a fresh ECDSA P-521, self-signed, CA:TRUE client certificate for `PLUGIN_CLIENT_CERT`,
//! reads the handshake line, and dials the announced address over TLS with server name
//! `localhost`, ALPN `h2`, trusting exactly the certificate the plugin announced.
//!
//! ```no_run
//! use dbplugin::testkit::Host;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let plugin = Host::new("target/debug/inmem-plugin").start().await?;
//! let db = plugin.database(Some("conn-1"));
//! assert_eq!(db.type_name().await?, "inmem");
//! let config = db.initialize(serde_json::json!({"connection_url": "inmem://x"}), true).await?;
//! assert!(config.contains_key("supported_credential_types"));
//! let status = plugin.shutdown().await?;
//! assert!(status.success());
//! # Ok(()) }
//! ```

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dbplugin_proto::dbplugin::v5 as pb;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::ConfigMap;
use crate::config::struct_to_map;

/// The generated protocol types, for calls the typed helpers do not cover.
pub use dbplugin_proto as proto;
/// gRPC status codes, the status type the calls return, and the protobuf timestamp.
pub mod grpc {
    pub use prost_types::Timestamp;
    pub use tonic::{Code, Status};
}

/// A failure of the test host (not of an RPC).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// The plugin could not be started.
    #[error("cannot start the plugin {path}: {source}")]
    Spawn {
        /// The binary.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The plugin exited or closed stdout before printing a handshake line.
    #[error("the plugin printed no handshake line (exit status: {status:?}); stderr:\n{stderr}")]
    NoHandshake {
        /// The exit status, when the process had already exited.
        status: Option<ExitStatus>,
        /// What it wrote to stderr.
        stderr: String,
    },
    /// No handshake line within the start timeout.
    #[error("timeout while waiting for plugin to start")]
    StartTimeout,
    /// The handshake line is malformed.
    #[error("unrecognized handshake line {line:?}: {why}")]
    BadHandshake {
        /// The line.
        line: String,
        /// What is wrong with it.
        why: String,
    },
    /// TLS or gRPC connection setup failed.
    #[error("cannot connect to the plugin: {0}")]
    Connect(String),
    /// An RPC failed.
    #[error(transparent)]
    Rpc(#[from] tonic::Status),
    /// Waiting for the process failed.
    #[error("waiting for the plugin: {0}")]
    Wait(#[source] std::io::Error),
}

/// The host's one-time AutoMTLS client certificate.
#[derive(Debug, Clone)]
pub struct ClientCertificate {
    /// PEM, as passed in `PLUGIN_CLIENT_CERT`.
    pub pem: String,
    /// The certificate DER.
    pub der: Vec<u8>,
    /// The private key, PKCS#8 DER.
    pub key_der: Vec<u8>,
}

impl ClientCertificate {
    /// A fresh certificate as go-plugin makes it: ECDSA P-521, `CN=localhost, O=HashiCorp`,
    /// DNS SAN `localhost`, CA:TRUE, self-signed.
    pub fn generate() -> Self {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512)
            .expect("P-521 key generation");
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .expect("certificate parameters");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "localhost");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "HashiCorp");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::seconds(30);
        params.not_after = now + time::Duration::hours(262_980);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::DigitalSignature,
            rcgen::KeyUsagePurpose::KeyEncipherment,
            rcgen::KeyUsagePurpose::KeyAgreement,
            rcgen::KeyUsagePurpose::KeyCertSign,
        ];
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        ];
        let cert = params.self_signed(&key).expect("self-signed certificate");
        ClientCertificate {
            pem: cert.pem(),
            der: cert.der().to_vec(),
            key_der: key.serialize_der(),
        }
    }
}

/// The parsed handshake line `CORE|APP|NETWORK|ADDRESS|PROTOCOL|CERT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// The whole line, without the newline.
    pub line: String,
    /// Field 1 (always `1`).
    pub core_version: u32,
    /// Field 2: the negotiated app protocol version.
    pub app_version: u32,
    /// Field 3: `unix` or `tcp`.
    pub network: String,
    /// Field 4: socket path or `127.0.0.1:port`.
    pub address: String,
    /// Field 5: `grpc`.
    pub protocol: String,
    /// Field 6, decoded: the plugin's certificate DER, when AutoMTLS is on.
    pub server_cert: Option<Vec<u8>>,
}

impl Handshake {
    /// Parses a handshake line as go-plugin's client does (stricter on field 6: it must be
    /// unpadded standard base64 when present).
    pub fn parse(line: &str) -> Result<Self, HostError> {
        use base64::Engine as _;
        let bad = |why: &str| HostError::BadHandshake {
            line: line.to_owned(),
            why: why.to_owned(),
        };
        let trimmed = line.trim();
        let parts: Vec<&str> = trimmed.split('|').collect();
        if parts.len() < 6 {
            return Err(bad("expected at least 6 fields separated by `|`"));
        }
        let core_version = parts[0]
            .parse()
            .map_err(|_| bad("field 1 is not a number"))?;
        let app_version = parts[1]
            .parse()
            .map_err(|_| bad("field 2 is not a number"))?;
        let server_cert = if parts[5].is_empty() {
            None
        } else {
            Some(
                base64::engine::general_purpose::STANDARD_NO_PAD
                    .decode(parts[5])
                    .map_err(|e| bad(&format!("field 6 is not unpadded standard base64: {e}")))?,
            )
        };
        Ok(Handshake {
            line: trimmed.to_owned(),
            core_version,
            app_version,
            network: parts[2].to_owned(),
            address: parts[3].to_owned(),
            protocol: parts[4].to_owned(),
            server_cert,
        })
    }
}

/// How to launch a plugin; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Host {
    program: PathBuf,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    protocol_versions: String,
    auto_mtls: bool,
    cookie: bool,
    start_timeout: Duration,
    cert: Option<ClientCertificate>,
}

impl Host {
    /// A launch of `program` with the v5 host's settings: versions `5,6`, AutoMTLS on.
    pub fn new(program: impl AsRef<Path>) -> Self {
        Host {
            program: program.as_ref().to_path_buf(),
            args: Vec::new(),
            envs: Vec::new(),
            protocol_versions: "5,6".to_owned(),
            auto_mtls: true,
            cookie: true,
            start_timeout: Duration::from_secs(60),
            cert: None,
        }
    }

    /// Adds a command-line argument (what operators register with `args=`).
    #[must_use]
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Sets an environment variable for the plugin.
    #[must_use]
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// `PLUGIN_PROTOCOL_VERSIONS` (default `5,6`).
    #[must_use]
    pub fn protocol_versions(mut self, versions: impl Into<String>) -> Self {
        self.protocol_versions = versions.into();
        self
    }

    /// Whether to pass `PLUGIN_CLIENT_CERT` and dial with TLS (default on).
    #[must_use]
    pub fn auto_mtls(mut self, on: bool) -> Self {
        self.auto_mtls = on;
        self
    }

    /// Whether to set the magic cookie (default on).
    #[must_use]
    pub fn cookie(mut self, on: bool) -> Self {
        self.cookie = on;
        self
    }

    /// How long to wait for the handshake line (default 60 s, as go-plugin).
    #[must_use]
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// Uses this host certificate instead of a fresh one (to dial the plugin again
    /// yourself, e.g. with other TLS settings).
    #[must_use]
    pub fn client_certificate(mut self, cert: ClientCertificate) -> Self {
        self.cert = Some(cert);
        self
    }

    /// Starts the plugin, reads its handshake and connects.
    pub async fn start(self) -> Result<PluginProcess, HostError> {
        let cert = self.auto_mtls.then(|| {
            self.cert
                .clone()
                .unwrap_or_else(ClientCertificate::generate)
        });
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .env("PLUGIN_PROTOCOL_VERSIONS", &self.protocol_versions)
            .env("PLUGIN_MIN_PORT", "10000")
            .env("PLUGIN_MAX_PORT", "25000")
            .env_remove("PLUGIN_CLIENT_CERT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if self.cookie {
            cmd.env(crate::server::COOKIE_KEY, crate::server::COOKIE_VALUE);
        }
        if let Some(cert) = &cert {
            cmd.env("PLUGIN_CLIENT_CERT", &cert.pem);
        }
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().map_err(|source| HostError::Spawn {
            path: self.program.display().to_string(),
            source,
        })?;

        let stderr = Arc::new(Mutex::new(Vec::new()));
        if let Some(err) = child.stderr.take() {
            let sink = stderr.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(err).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    sink.lock().unwrap().push(line);
                }
            });
        }
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut stdout = BufReader::new(stdout).lines();
        let first = match tokio::time::timeout(self.start_timeout, stdout.next_line()).await {
            Err(_) => return Err(HostError::StartTimeout),
            Ok(Ok(Some(line))) => line,
            Ok(_) => {
                let status = tokio::time::timeout(Duration::from_secs(2), child.wait())
                    .await
                    .ok()
                    .and_then(Result::ok);
                tokio::time::sleep(Duration::from_millis(50)).await;
                return Err(HostError::NoHandshake {
                    status,
                    stderr: stderr.lock().unwrap().join("\n"),
                });
            }
        };
        let extra_stdout = Arc::new(Mutex::new(Vec::new()));
        {
            let sink = extra_stdout.clone();
            tokio::spawn(async move {
                while let Ok(Some(line)) = stdout.next_line().await {
                    sink.lock().unwrap().push(line);
                }
            });
        }
        let handshake = Handshake::parse(&first)?;
        let channel = connect(&handshake, cert.as_ref()).await?;
        Ok(PluginProcess {
            child,
            handshake,
            channel,
            stderr,
            extra_stdout,
        })
    }
}

/// Dials the plugin as go-plugin does.
pub async fn connect(
    handshake: &Handshake,
    cert: Option<&ClientCertificate>,
) -> Result<Channel, HostError> {
    let tls = match (cert, &handshake.server_cert) {
        (Some(cert), Some(server)) => Some(Arc::new(client_config(Some(cert), server.clone())?)),
        (Some(_), None) => {
            return Err(HostError::Connect(
                "AutoMTLS is on but the handshake announced no certificate".into(),
            ));
        }
        (None, _) => None,
    };
    let network = handshake.network.clone();
    let address = handshake.address.clone();
    let connector = tower::service_fn(move |_: tonic::transport::Uri| {
        let network = network.clone();
        let address = address.clone();
        let tls = tls.clone();
        async move { dial_h2(&network, &address, tls).await }
    });
    Endpoint::from_static("http://unused")
        .connect_with_connector(connector)
        .await
        .map_err(|e| HostError::Connect(format!("{e}: {:?}", std::error::Error::source(&e))))
}

/// A byte stream to a plugin: Unix or TCP, plaintext or TLS.
pub trait PluginStream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> PluginStream for T {}

/// A connection [`dial`] opened, and the ALPN protocol the plugin selected (TLS only).
pub struct Dialled {
    /// The connection.
    pub stream: std::pin::Pin<Box<dyn PluginStream>>,
    /// The ALPN protocol the server selected, if TLS was used and it selected one.
    pub alpn: Option<Vec<u8>>,
}

impl std::fmt::Debug for Dialled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dialled").field("alpn", &self.alpn).finish()
    }
}

/// Opens the address a handshake announced (`unix` or `tcp`), with TLS for the name
/// `localhost` when a configuration is given, and reports the ALPN protocol the plugin
/// selected. It does not judge that choice: [`connect`] refuses anything but `h2`, as
/// grpc-go does; a checker can report it instead.
pub async fn dial(
    network: &str,
    address: &str,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> std::io::Result<Dialled> {
    let raw: std::pin::Pin<Box<dyn PluginStream>> = match network {
        "unix" => Box::pin(tokio::net::UnixStream::connect(address).await?),
        "tcp" => Box::pin(tokio::net::TcpStream::connect(address).await?),
        other => {
            return Err(std::io::Error::other(format!(
                "unknown address type: {other}"
            )));
        }
    };
    let Some(tls) = tls else {
        return Ok(Dialled {
            stream: raw,
            alpn: None,
        });
    };
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(ServerName::try_from("localhost").expect("valid name"), raw)
        .await?;
    let alpn = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    Ok(Dialled {
        stream: Box::pin(stream),
        alpn,
    })
}

/// [`dial`] as a go-plugin host dials: a TLS connection must have selected ALPN `h2`.
async fn dial_h2(
    network: &str,
    address: &str,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> std::io::Result<TokioIo<std::pin::Pin<Box<dyn PluginStream>>>> {
    let with_tls = tls.is_some();
    let dialled = dial(network, address, tls).await?;
    if with_tls && dialled.alpn.as_deref() != Some(b"h2") {
        return Err(std::io::Error::other(
            "credentials: cannot check peer: missing selected ALPN property",
        ));
    }
    Ok(TokioIo::new(dialled.stream))
}

/// The host's TLS client configuration: trusts exactly `server_der` for the name
/// `localhost`, offers ALPN `h2`, and presents `cert` when given (a dial without one must be
/// refused by a conforming plugin).
pub fn client_config(
    cert: Option<&ClientCertificate>,
    server_der: Vec<u8>,
) -> Result<rustls::ClientConfig, HostError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(PinnedServer {
        der: server_der,
        algorithms: provider.signature_verification_algorithms,
    });
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| HostError::Connect(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match cert {
        Some(cert) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from(cert.der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_der.clone())),
            )
            .map_err(|e| HostError::Connect(e.to_string()))?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// `logical.PluginVersion/Version` on any channel, without a multiplex id.
pub async fn plugin_version(channel: Channel) -> Result<String, tonic::Status> {
    let mut client = proto::logical::plugin_version_client::PluginVersionClient::new(channel);
    Ok(client
        .version(proto::logical::Empty {})
        .await?
        .into_inner()
        .plugin_version)
}

/// `MultiplexingSupport` on any channel; `Unimplemented` comes back as the error.
pub async fn multiplexing_support(channel: Channel) -> Result<bool, tonic::Status> {
    use proto::pluginutil::multiplexing::{
        MultiplexingSupportRequest, plugin_multiplexing_client::PluginMultiplexingClient,
    };
    Ok(PluginMultiplexingClient::new(channel)
        .multiplexing_support(MultiplexingSupportRequest {})
        .await?
        .into_inner()
        .supported)
}

/// Trusts exactly the certificate from the handshake, for the name `localhost`.
#[derive(Debug)]
struct PinnedServer {
    der: Vec<u8>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() != self.der.as_slice() {
            return Err(rustls::Error::General(
                "server certificate differs from the handshake's".into(),
            ));
        }
        if server_name.to_str() != "localhost" {
            return Err(rustls::Error::General("unexpected server name".into()));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A running plugin process and the connection to it.
#[derive(Debug)]
pub struct PluginProcess {
    child: Child,
    handshake: Handshake,
    channel: Channel,
    stderr: Arc<Mutex<Vec<String>>>,
    extra_stdout: Arc<Mutex<Vec<String>>>,
}

/// Adds `multiplex_id` to every call, as the host's plugin catalog does.
#[derive(Debug, Clone)]
pub struct MultiplexId(Option<MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for MultiplexId {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(id) = &self.0 {
            request
                .metadata_mut()
                .insert(crate::server::v5::MULTIPLEX_ID_KEY, id.clone());
        }
        Ok(request)
    }
}

/// The generated v5 client with the multiplex id interceptor.
pub type RawDatabaseClient =
    pb::database_client::DatabaseClient<InterceptedService<Channel, MultiplexId>>;

impl PluginProcess {
    /// The handshake the plugin printed.
    pub fn handshake(&self) -> &Handshake {
        &self.handshake
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The gRPC channel to the plugin.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// Lines the plugin wrote to stderr so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Lines the plugin wrote to stdout after the handshake (should be none).
    pub fn stdout_after_handshake(&self) -> Vec<String> {
        self.extra_stdout.lock().unwrap().clone()
    }

    /// A database client; every call carries `multiplex_id` when one is given.
    pub fn database(&self, multiplex_id: Option<&str>) -> DatabaseClient {
        DatabaseClient::new(self.channel.clone(), multiplex_id)
    }

    /// `logical.PluginVersion/Version`, without a multiplex id (the registration probe).
    pub async fn version(&self) -> Result<String, tonic::Status> {
        plugin_version(self.channel.clone()).await
    }

    /// `MultiplexingSupport`, with the host's reading: `Unimplemented` means no.
    pub async fn multiplexing_supported(&self) -> Result<bool, tonic::Status> {
        match multiplexing_support(self.channel.clone()).await {
            Err(s) if s.code() == tonic::Code::Unimplemented => Ok(false),
            other => other,
        }
    }

    /// The host's kill sequence: `GRPCController/Shutdown`, close the connection, wait up to
    /// 2 s for the process to exit, else SIGKILL. Returns the exit status. (The real host
    /// waits for the `Shutdown` answer forever; this gives up after 10 s.)
    pub async fn shutdown(self) -> Result<ExitStatus, HostError> {
        Ok(self.shutdown_within(Duration::from_secs(10)).await?.1)
    }

    /// Like [`PluginProcess::shutdown`], waiting at most `rpc_timeout` for the `Shutdown`
    /// answer; returns whether it came, and the exit status.
    pub async fn shutdown_within(
        mut self,
        rpc_timeout: Duration,
    ) -> Result<(bool, ExitStatus), HostError> {
        let mut controller =
            proto::plugin::grpc_controller_client::GrpcControllerClient::new(self.channel.clone());
        let answered = matches!(
            tokio::time::timeout(rpc_timeout, controller.shutdown(proto::plugin::Empty {})).await,
            Ok(Ok(_))
        );
        drop(controller);
        drop(self.channel);
        let status = match tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await {
            Ok(status) => status.map_err(HostError::Wait)?,
            Err(_) => {
                let _ = self.child.start_kill();
                self.child.wait().await.map_err(HostError::Wait)?
            }
        };
        Ok((answered, status))
    }

    /// SIGKILLs the process and waits for it.
    pub async fn kill(mut self) -> Result<ExitStatus, HostError> {
        let _ = self.child.start_kill();
        self.child.wait().await.map_err(HostError::Wait)
    }
}

/// Typed calls to `dbplugin.v5.Database` for one multiplex id.
#[derive(Debug, Clone)]
pub struct DatabaseClient {
    raw: RawDatabaseClient,
}

impl DatabaseClient {
    /// A client on any channel to a plugin, adding `multiplex_id` to every call when given.
    pub fn new(channel: Channel, multiplex_id: Option<&str>) -> Self {
        let id = multiplex_id.map(|id| id.parse().expect("an ASCII multiplex id"));
        DatabaseClient {
            raw: pb::database_client::DatabaseClient::with_interceptor(channel, MultiplexId(id)),
        }
    }

    /// The generated client, for requests the helpers below do not build.
    pub fn raw(&mut self) -> &mut RawDatabaseClient {
        &mut self.raw
    }

    /// `Type`.
    pub async fn type_name(&self) -> Result<String, tonic::Status> {
        Ok(self
            .raw
            .clone()
            .r#type(pb::Empty {})
            .await?
            .into_inner()
            .r#type)
    }

    /// `Initialize` with a JSON object as config; returns the config to store.
    pub async fn initialize(
        &self,
        config: serde_json::Value,
        verify_connection: bool,
    ) -> Result<ConfigMap, tonic::Status> {
        let map = match config {
            serde_json::Value::Object(map) => map,
            _ => {
                return Err(tonic::Status::invalid_argument(
                    "config must be a JSON object",
                ));
            }
        };
        let config_data = crate::config::map_to_struct(map)
            .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
        let response = self
            .raw
            .clone()
            .initialize(pb::InitializeRequest {
                config_data: Some(config_data),
                verify_connection,
            })
            .await?;
        Ok(struct_to_map(response.into_inner().config_data))
    }

    /// `NewUser` with a password credential; returns the username.
    pub async fn new_user_with_password(
        &self,
        role_name: &str,
        password: &str,
        statements: &[&str],
        expiration: time::OffsetDateTime,
    ) -> Result<String, tonic::Status> {
        let request = pb::NewUserRequest {
            username_config: Some(pb::UsernameConfig {
                display_name: "token".into(),
                role_name: role_name.into(),
            }),
            password: password.into(),
            expiration: Some(timestamp(expiration)),
            statements: Some(pb::Statements {
                commands: statements.iter().map(|s| (*s).to_owned()).collect(),
            }),
            rollback_statements: Some(pb::Statements::default()),
            credential_type: 0,
            ..Default::default()
        };
        Ok(self
            .raw
            .clone()
            .new_user(request)
            .await?
            .into_inner()
            .username)
    }

    /// `UpdateUser` changing the password.
    pub async fn update_password(
        &self,
        username: &str,
        password: &str,
    ) -> Result<(), tonic::Status> {
        let request = pb::UpdateUserRequest {
            username: username.into(),
            password: Some(pb::ChangePassword {
                new_password: password.into(),
                statements: Some(pb::Statements::default()),
            }),
            ..Default::default()
        };
        self.raw.clone().update_user(request).await?;
        Ok(())
    }

    /// `UpdateUser` changing the expiration.
    pub async fn update_expiration(
        &self,
        username: &str,
        expiration: time::OffsetDateTime,
    ) -> Result<(), tonic::Status> {
        let request = pb::UpdateUserRequest {
            username: username.into(),
            expiration: Some(pb::ChangeExpiration {
                new_expiration: Some(timestamp(expiration)),
                statements: Some(pb::Statements::default()),
            }),
            ..Default::default()
        };
        self.raw.clone().update_user(request).await?;
        Ok(())
    }

    /// `DeleteUser`.
    pub async fn delete_user(&self, username: &str) -> Result<(), tonic::Status> {
        let request = pb::DeleteUserRequest {
            username: username.into(),
            statements: Some(pb::Statements::default()),
        };
        self.raw.clone().delete_user(request).await?;
        Ok(())
    }

    /// `Close`.
    pub async fn close(&self) -> Result<(), tonic::Status> {
        self.raw.clone().close(pb::Empty {}).await?;
        Ok(())
    }
}

/// A JSON object as the `google.protobuf.Struct` the host sends (numbers become doubles).
pub fn config_to_struct(config: ConfigMap) -> Result<prost_types::Struct, String> {
    crate::config::map_to_struct(config).map_err(|e| e.to_string())
}

/// A `google.protobuf.Struct` as the host reads it back (top-level whole numbers become
/// integers).
pub fn struct_to_config(s: Option<prost_types::Struct>) -> ConfigMap {
    struct_to_map(s)
}

fn timestamp(t: time::OffsetDateTime) -> prost_types::Timestamp {
    let nanos = t.unix_timestamp_nanos();
    prost_types::Timestamp {
        seconds: nanos.div_euclid(1_000_000_000) as i64,
        nanos: nanos.rem_euclid(1_000_000_000) as i32,
    }
}

/// Checks an example plugin's README against the plugin: the `sh` blocks' `plugin register`
/// commands name `binary` (with `-command=`, version `v0.1.0`, type `database`), every
/// `write database/config/...` key is one the plugin or the host accepts, `cargo build` and
/// `sha256sum` lines name the binary, and every plugin key appears in backticks. Returns
/// the problems found (empty when the README is consistent).
pub fn readme_problems(
    readme: &str,
    binary: &str,
    config_keys: &[&str],
    host_keys: &[&str],
) -> Vec<String> {
    let mut problems = Vec::new();
    let cmds = readme_commands(readme);
    let register: Vec<&String> = cmds
        .iter()
        .filter(|c| c.contains(" plugin register "))
        .collect();
    if register.is_empty() {
        problems.push("no `plugin register` command".to_owned());
    }
    for c in &register {
        let command = c
            .split_whitespace()
            .find_map(|w| w.strip_prefix("-command="));
        if command != Some(binary) {
            problems.push(format!("`-command=` is not {binary}: {c}"));
        }
        if !c.contains("-version=v0.1.0") || !c.trim_end().ends_with(&format!("database {binary}"))
        {
            problems.push(format!(
                "register command does not end in `database {binary}` with -version=v0.1.0: {c}"
            ));
        }
    }
    let configs: Vec<&String> = cmds
        .iter()
        .filter(|c| c.contains(" write database/config/"))
        .collect();
    if configs.is_empty() {
        problems.push("no `write database/config/...` command".to_owned());
    }
    for c in configs {
        let keys = command_keys(c);
        if !c.contains(&format!("plugin_name={binary}")) {
            problems.push(format!("config does not set plugin_name={binary}: {c}"));
        }
        for k in &keys {
            if !config_keys.contains(&k.as_str()) && !host_keys.contains(&k.as_str()) {
                problems.push(format!(
                    "README configures `{k}`, which the plugin does not accept"
                ));
            }
        }
    }
    for c in cmds.iter().filter(|c| c.starts_with("cargo build")) {
        if !c.ends_with(&format!("-p {binary}")) {
            problems.push(format!("build command does not build {binary}: {c}"));
        }
    }
    for c in cmds.iter().filter(|c| c.contains("sha256sum ")) {
        if !c.contains(&format!("/{binary}")) {
            problems.push(format!("sha256sum does not hash {binary}: {c}"));
        }
    }
    for k in config_keys {
        if !readme.contains(&format!("`{k}`")) {
            problems.push(format!("`{k}` missing from the README's key table"));
        }
    }
    problems
}

/// The shell commands of a README's ```` ```sh ```` blocks, `\` continuations joined.
fn readme_commands(readme: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut in_sh = false;
    for line in readme.lines() {
        let line = line.trim();
        if line.starts_with("```") {
            in_sh = line == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        if let Some(body) = line.strip_suffix('\\') {
            current.push_str(body);
            current.push(' ');
        } else {
            current.push_str(line);
            out.push(std::mem::take(&mut current));
        }
    }
    out
}

/// The `key=value` arguments after `vault write <path>` (values may be quoted).
fn command_keys(command: &str) -> Vec<String> {
    let mut word = String::new();
    let mut quote = None;
    let mut words = Vec::new();
    for c in command.chars() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => {}
            (None, ' ') => words.push(std::mem::take(&mut word)),
            _ => word.push(c),
        }
    }
    words.push(word);
    words
        .iter()
        .skip(3)
        .filter_map(|w| w.split_once('=').map(|(k, _)| k.to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn readme_problems_finds_wrong_keys_and_commands() {
        let good = "keys: `connection_url`\n```sh\nvault plugin register -sha256=x -command=p -version=v0.1.0 database p\nvault write database/config/x plugin_name=p connection_url='a b'\n```\n";
        assert!(
            super::readme_problems(good, "p", &["connection_url"], &["plugin_name"]).is_empty()
        );
        let bad = good
            .replace("connection_url='a b'", "conection_url=x")
            .replace("-command=p", "-command=q");
        let problems = super::readme_problems(&bad, "p", &["connection_url"], &["plugin_name"]);
        assert_eq!(problems.len(), 2, "{problems:?}");
    }
}
