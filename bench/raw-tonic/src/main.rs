//! Benchmark baseline: the practical limit of a Rust database plugin.
//!
//! Just enough of go-plugin's process protocol for the benchmark driver's real Vault SDK
//! host to launch it and call `NewUser`, written directly on tonic with no dbplugin
//! framework: the magic cookie, the handshake line (protocol 5, Unix socket), AutoMTLS
//! (our own P-256 certificate; the host's P-521 certificate pinned by DER and its
//! signatures checked with aws-lc-rs), `grpc.health.v1.Health`, `plugin.GRPCController`
//! `Shutdown`, and `dbplugin.v5.Database` `Type`, `Initialize`, `NewUser` and `Close`.
//!
//! `NewUser` does the same work as `examples/inmem` (username `v-<display 8>-<role 8>-<10
//! base62>`, statement placeholders filled, the password's SHA-256 recorded, the user
//! stored in a map under a mutex; no snapshot). One instance serves every call: there is no
//! multiplexing, no request validation, no panic containment, no logging. What the
//! framework costs on top of this is the "framework overhead" figure of `BENCHMARKS.md`.
//!
//! Not a plugin to ship: no stdio or broker service, no version probe, no TCP, no v4.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use base64::Engine as _;
use dbplugin_proto::dbplugin::v5 as pb;
use dbplugin_proto::plugin::{self as goplugin, grpc_controller_server as controller};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, watch};
use tokio_rustls::server::TlsStream;
use tonic::{Request, Response, Status};

const COOKIE_KEY: &str = "VAULT_DATABASE_PLUGIN";
const COOKIE_VALUE: &str = "926a0820-aea2-be28-51d6-83cdf00e8edb";

fn main() -> ExitCode {
    if std::env::var(COOKIE_KEY).as_deref() != Ok(COOKIE_VALUE) {
        eprintln!("This binary is a plugin. These are not meant to be executed directly.");
        return ExitCode::from(1);
    }
    // Leave with the host, so an interrupted benchmark leaves no process behind.
    // SAFETY: PR_SET_PDEATHSIG with a valid signal only sets a process attribute.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("raw-tonic-plugin: {e}");
            ExitCode::from(1)
        }
    }
}

async fn run() -> Result<(), String> {
    use rustls::pki_types::pem::PemObject;
    let pem = std::env::var("PLUGIN_CLIENT_CERT")
        .map_err(|_| "PLUGIN_CLIENT_CERT is not set (AutoMTLS only)".to_owned())?;
    let host_cert = CertificateDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| format!("PLUGIN_CLIENT_CERT: {e}"))?;
    let (own_cert, own_key) = identity()?;
    let provider = Arc::new(rustls::crypto::CryptoProvider {
        signature_verification_algorithms: rustls::crypto::aws_lc_rs::default_provider()
            .signature_verification_algorithms,
        ..rustls::crypto::ring::default_provider()
    });
    let verifier = Arc::new(Pinned {
        expected: host_cert,
        algorithms: provider.signature_verification_algorithms,
    });
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![own_cert.clone()], own_key)
        .map_err(|e| e.to_string())?;
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));

    let dir = std::env::var_os("PLUGIN_UNIX_SOCKET_DIR")
        .filter(|d| !d.is_empty())
        .map_or_else(std::env::temp_dir, PathBuf::from);
    let path = dir.join(format!("plugin{}", rand::random::<u32>()));
    let listener = tokio::net::UnixListener::bind(&path).map_err(|e| e.to_string())?;

    let (stop_tx, mut stop_rx) = watch::channel(false);
    let (conn_tx, conn_rx) = mpsc::channel::<io::Result<Conn>>(16);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let conn_tx = conn_tx.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(stream).await {
                    let _ = conn_tx.send(Ok(Conn(tls))).await;
                }
            });
        }
    });

    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status("plugin", tonic_health::ServingStatus::Serving)
        .await;

    let cert_field = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&own_cert);
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        writeln!(out, "1|5|unix|{}|grpc|{cert_field}", path.display())
            .and_then(|()| out.flush())
            .map_err(|e| e.to_string())?;
    }

    let stopped = async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    };
    let result = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(controller::GrpcControllerServer::new(Controller(stop_tx)))
        .add_service(pb::database_server::DatabaseServer::new(InMemory::default()))
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::ReceiverStream::new(conn_rx),
            stopped,
        )
        .await;
    let _ = std::fs::remove_file(&path);
    // The host waits for the process to exit after Shutdown; do not linger on open streams.
    std::process::exit(i32::from(result.is_err()));
}

/// A fresh self-signed P-256 certificate for `localhost` (ring).
fn identity() -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), String> {
    let key =
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| e.to_string())?;
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned()]).map_err(|e| e.to_string())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    let now = OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::seconds(30);
    params.not_after = now + time::Duration::days(365);
    let mut serial: [u8; 16] = rand::random();
    serial[0] = (serial[0] & 0x7f) | 0x01;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    Ok((
        cert.der().clone(),
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    ))
}

/// Accepts exactly the host's certificate.
#[derive(Debug)]
struct Pinned {
    expected: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for Pinned {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.expected.as_ref() {
            Ok(ClientCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
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

/// One accepted TLS connection (a concrete type: no boxing).
struct Conn(TlsStream<UnixStream>);

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = ();

    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

struct Controller(watch::Sender<bool>);

#[tonic::async_trait]
impl controller::GrpcController for Controller {
    async fn shutdown(
        &self,
        _: Request<goplugin::Empty>,
    ) -> Result<Response<goplugin::Empty>, Status> {
        self.0.send_replace(true);
        Ok(Response::new(goplugin::Empty {}))
    }
}

struct User {
    _credential_type: i32,
    _password_sha256: String,
    _expiration: String,
    _statements: Vec<String>,
}

#[derive(Default)]
struct InMemory {
    users: Mutex<BTreeMap<String, User>>,
}

fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn random_suffix() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..10)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

fn sha256_hex(data: &[u8]) -> String {
    use std::fmt::Write as _;
    Sha256::digest(data)
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[tonic::async_trait]
impl pb::database_server::Database for InMemory {
    async fn initialize(
        &self,
        request: Request<pb::InitializeRequest>,
    ) -> Result<Response<pb::InitializeResponse>, Status> {
        Ok(Response::new(pb::InitializeResponse {
            config_data: request.into_inner().config_data,
        }))
    }

    async fn new_user(
        &self,
        request: Request<pb::NewUserRequest>,
    ) -> Result<Response<pb::NewUserResponse>, Status> {
        let req = request.into_inner();
        let names = req.username_config.unwrap_or_default();
        let username = format!(
            "v-{}-{}-{}",
            truncate(&names.display_name, 8),
            truncate(&names.role_name, 8),
            random_suffix()
        );
        let expiration = req
            .expiration
            .and_then(|ts| {
                OffsetDateTime::from_unix_timestamp_nanos(
                    i128::from(ts.seconds) * 1_000_000_000 + i128::from(ts.nanos),
                )
                .ok()
            })
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let statement_expiration = format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}+0000",
            expiration.year(),
            u8::from(expiration.month()),
            expiration.day(),
            expiration.hour(),
            expiration.minute(),
            expiration.second()
        );
        // The lock is held from here on, as in examples/inmem.
        let mut users = self
            .users
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut ran = Vec::new();
        for command in req.statements.map(|s| s.commands).unwrap_or_default() {
            let text = command
                .replace("{{name}}", &username)
                .replace("{{username}}", &username)
                .replace("{{password}}", "[password]")
                .replace("{{expiration}}", &statement_expiration);
            if text.trim_start().starts_with("ERROR") {
                return Err(Status::unknown(format!("statement failed: {text}")));
            }
            ran.push(text);
        }
        let user = User {
            _credential_type: req.credential_type,
            _password_sha256: sha256_hex(req.password.as_bytes()),
            _expiration: expiration
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            _statements: ran,
        };
        users.insert(username.clone(), user);
        drop(users);
        Ok(Response::new(pb::NewUserResponse { username }))
    }

    async fn update_user(
        &self,
        _: Request<pb::UpdateUserRequest>,
    ) -> Result<Response<pb::UpdateUserResponse>, Status> {
        Err(Status::unimplemented("not part of the benchmark"))
    }

    async fn delete_user(
        &self,
        _: Request<pb::DeleteUserRequest>,
    ) -> Result<Response<pb::DeleteUserResponse>, Status> {
        Err(Status::unimplemented("not part of the benchmark"))
    }

    async fn r#type(&self, _: Request<pb::Empty>) -> Result<Response<pb::TypeResponse>, Status> {
        Ok(Response::new(pb::TypeResponse {
            r#type: "inmem".to_owned(),
        }))
    }

    async fn close(&self, _: Request<pb::Empty>) -> Result<Response<pb::Empty>, Status> {
        Ok(Response::new(pb::Empty {}))
    }
}
