//! Launching a plugin binary the way Vault and OpenBao do.
//!
//! `demo`, `register` and `oci` use the runtime's test host (`dbplugin::testkit::Host`,
//! see [`host`]): it behaves as Vault does. `check` uses [`Launch`] instead, on purpose,
//! because it must observe what that host refuses: a launch here keeps the raw handshake
//! line and parses it leniently (a padded certificate must fail only
//! `handshake-cert-encoding`, not hide the TLS and service rules), dials with or without
//! the host's client certificate (`tls-client-cert-required`), observes ALPN instead of
//! requiring `h2` (`tls-alpn-h2`), runs a launch without the cookie to its exit with all of
//! stdout and stderr (`cookie`), limits the `Shutdown` RPC and records whether the process
//! had to be killed (`shutdown`, and the cut last stderr line for `stderr-hclog`).

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use dbplugin::testkit::{ClientCertificate, Host};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tonic::transport::{Channel, Endpoint};

/// go-plugin's magic cookie for database plugins (v4 and v5).
pub(crate) const COOKIE_KEY: &str = "VAULT_DATABASE_PLUGIN";
/// Its value.
pub(crate) const COOKIE_VALUE: &str = "926a0820-aea2-be28-51d6-83cdf00e8edb";
/// What go-plugin prints on stderr when the cookie is missing.
pub(crate) const NOT_A_PLUGIN: &str = "This binary is a plugin. These are not meant to be executed directly.\n\
Please execute the program that consumes these plugins, which will\n\
load any plugins automatically\n";

/// How long to wait for the handshake line (go-plugin waits a minute; we are impatient).
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The `VAULT_VERSION` our launches announce.
const VAULT_VERSION: &str = "1.21.0";

/// A v5 host's launch with the runtime's test host, which behaves as Vault does (strict
/// handshake parsing, a TLS dial that requires ALPN `h2`): versions `5,6`, AutoMTLS, and the
/// environment Vault adds. `demo` and `register` launch plugins this way; only `check`
/// uses [`Launch`], because it must observe what the test host refuses.
pub(crate) fn host(program: &Path, args: &[String]) -> Host {
    args.iter().fold(
        Host::new(program)
            .start_timeout(START_TIMEOUT)
            .env("VAULT_VERSION", VAULT_VERSION)
            .env("VAULT_PLUGIN_AUTOMTLS_ENABLED", "true")
            .env("VAULT_PLUGIN_METADATA_MODE", "false"),
        |host, arg| host.arg(arg),
    )
}

/// A v5 host's launch in metadata mode, as at registration.
pub(crate) fn metadata_host(program: &Path, args: &[String]) -> Host {
    host(program, args).env("VAULT_PLUGIN_METADATA_MODE", "true")
}

/// A v4 host's metadata-mode launch: versions `3,4`, no `PLUGIN_CLIENT_CERT`, plaintext gRPC.
pub(crate) fn v4_metadata_host(program: &Path, args: &[String]) -> Host {
    metadata_host(program, args)
        .protocol_versions("3,4")
        .auto_mtls(false)
        .env("VAULT_PLUGIN_AUTOMTLS_ENABLED", "false")
}

/// A launch of a plugin binary, for `check`.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    pub(crate) program: PathBuf,
    pub(crate) args: Vec<String>,
    /// `PLUGIN_PROTOCOL_VERSIONS`.
    pub(crate) versions: String,
    /// AutoMTLS: a fresh host certificate in `PLUGIN_CLIENT_CERT`.
    pub(crate) auto_mtls: bool,
    /// `VAULT_PLUGIN_METADATA_MODE`.
    pub(crate) metadata_mode: bool,
    /// Set the magic cookie.
    pub(crate) cookie: bool,
}

impl Launch {
    /// A v5 host's launch: versions `5,6`, AutoMTLS, not metadata mode.
    pub(crate) fn v5(program: &Path, args: &[String]) -> Self {
        Launch {
            program: program.to_path_buf(),
            args: args.to_vec(),
            versions: "5,6".into(),
            auto_mtls: true,
            metadata_mode: false,
            cookie: true,
        }
    }

    fn command(&self, cert: Option<&ClientCertificate>) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .env_remove(COOKIE_KEY)
            .env_remove("PLUGIN_CLIENT_CERT")
            .env_remove("PLUGIN_MULTIPLEX_GRPC")
            .env_remove("VAULT_UNWRAP_TOKEN")
            .env_remove("BAO_UNWRAP_TOKEN")
            .env("PLUGIN_PROTOCOL_VERSIONS", &self.versions)
            .env("PLUGIN_MIN_PORT", "10000")
            .env("PLUGIN_MAX_PORT", "25000")
            .env("VAULT_VERSION", VAULT_VERSION)
            .env("VAULT_PLUGIN_METADATA_MODE", bool_str(self.metadata_mode))
            .env("VAULT_PLUGIN_AUTOMTLS_ENABLED", bool_str(self.auto_mtls))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if self.cookie {
            cmd.env(COOKIE_KEY, COOKIE_VALUE);
        }
        if let Some(cert) = cert {
            cmd.env("PLUGIN_CLIENT_CERT", &cert.pem);
        }
        cmd
    }

    /// Runs the binary to completion (for launches that must not get as far as a
    /// handshake, such as the one without the cookie).
    pub(crate) async fn run_to_exit(&self, timeout: Duration) -> Result<Exited, String> {
        let cert = self.auto_mtls.then(ClientCertificate::generate);
        let mut cmd = self.command(cert.as_ref());
        let child = cmd.spawn().map_err(|e| spawn_error(&self.program, &e))?;
        match tokio::time::timeout(timeout, child.wait_with_output()).await {
            Err(_) => Err(format!(
                "still running after {} s (killed)",
                timeout.as_secs()
            )),
            Ok(Err(e)) => Err(format!("waiting for the process: {e}")),
            Ok(Ok(out)) => Ok(Exited {
                status: out.status,
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }),
        }
    }

    /// Starts the plugin and reads its handshake line.
    pub(crate) async fn start(&self) -> Result<Started, String> {
        let cert = self.auto_mtls.then(ClientCertificate::generate);
        let mut cmd = self.command(cert.as_ref());
        let mut child = cmd.spawn().map_err(|e| spawn_error(&self.program, &e))?;
        let started_at = Instant::now();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stderr_task = child.stderr.take().map(|err| {
            let sink = stderr.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(err).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    sink.lock().unwrap_or_else(|e| e.into_inner()).push(line);
                }
            })
        });
        let out = child.stdout.take().ok_or("stdout is not piped")?;
        let mut out = BufReader::new(out).lines();
        let line = match tokio::time::timeout(START_TIMEOUT, out.next_line()).await {
            Err(_) => {
                return Err(format!(
                    "timeout while waiting for plugin to start ({} s)",
                    START_TIMEOUT.as_secs()
                ));
            }
            Ok(Ok(Some(line))) => line,
            Ok(_) => {
                let status = tokio::time::timeout(Duration::from_secs(2), child.wait())
                    .await
                    .ok()
                    .and_then(Result::ok);
                tokio::time::sleep(Duration::from_millis(100)).await;
                let err = stderr.lock().unwrap_or_else(|e| e.into_inner()).join("\n");
                return Err(format!(
                    "plugin exited before we could connect (status {}); stderr:\n{err}",
                    status.map_or_else(|| "unknown".into(), |s| s.to_string())
                ));
            }
        };
        let startup = started_at.elapsed();
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stdout_task = {
            let sink = stdout.clone();
            tokio::spawn(async move {
                while let Ok(Some(line)) = out.next_line().await {
                    sink.lock().unwrap_or_else(|e| e.into_inner()).push(line);
                }
            })
        };
        Ok(Started {
            handshake: Handshake::parse(&line),
            child,
            cert,
            stderr,
            stdout,
            readers: [stderr_task, Some(stdout_task)]
                .into_iter()
                .flatten()
                .collect(),
            startup,
        })
    }
}

fn bool_str(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

fn spawn_error(program: &Path, e: &std::io::Error) -> String {
    format!("cannot start {}: {e}", program.display())
}

/// A process that ran to completion.
#[derive(Debug)]
pub(crate) struct Exited {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// The handshake line, split but not judged (`testkit::Handshake::parse` refuses a padded
/// certificate or a short line, which `check` must report rule by rule).
#[derive(Debug, Clone)]
pub(crate) struct Handshake {
    pub(crate) line: String,
    pub(crate) fields: Vec<String>,
}

impl Handshake {
    pub(crate) fn parse(line: &str) -> Self {
        let line = line.trim().to_owned();
        let fields = line.split('|').map(str::to_owned).collect();
        Handshake { line, fields }
    }

    fn field(&self, i: usize) -> &str {
        self.fields.get(i).map_or("", String::as_str)
    }

    pub(crate) fn app_version(&self) -> Option<u32> {
        self.field(1).parse().ok()
    }

    pub(crate) fn network(&self) -> &str {
        self.field(2)
    }

    pub(crate) fn address(&self) -> &str {
        self.field(3)
    }

    pub(crate) fn cert_field(&self) -> &str {
        self.field(5)
    }

    /// The certificate DER, accepting padded base64 too (strictness is a check's job).
    pub(crate) fn cert_lenient(&self) -> Option<Vec<u8>> {
        let field = self.cert_field();
        if field.is_empty() {
            return None;
        }
        base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(field)
            .or_else(|_| base64::engine::general_purpose::STANDARD.decode(field))
            .ok()
    }
}

/// A running plugin that printed a first stdout line.
#[derive(Debug)]
pub(crate) struct Started {
    pub(crate) handshake: Handshake,
    child: Child,
    /// The host certificate given in `PLUGIN_CLIENT_CERT`, if any.
    pub(crate) cert: Option<ClientCertificate>,
    stderr: Arc<Mutex<Vec<String>>>,
    stdout: Arc<Mutex<Vec<String>>>,
    readers: Vec<tokio::task::JoinHandle<()>>,
    /// Time from spawn to the handshake line.
    pub(crate) startup: Duration,
}

/// What happened at shutdown.
#[derive(Debug)]
pub(crate) struct Stopped {
    /// The `Shutdown` RPC: `None` when it did not answer in time.
    pub(crate) rpc: Option<Result<(), tonic::Status>>,
    /// Exit status, and whether we had to SIGKILL.
    pub(crate) status: Option<ExitStatus>,
    pub(crate) killed: bool,
    /// From the `Shutdown` call (or its timeout) to the exit.
    pub(crate) exit_after: Duration,
    pub(crate) stderr: Vec<String>,
    pub(crate) stdout_after_handshake: Vec<String>,
}

/// How long the host waits for the process after `Shutdown`.
pub(crate) const EXIT_GRACE: Duration = Duration::from_secs(2);
/// How long we wait for the `Shutdown` RPC itself (the host waits forever).
pub(crate) const SHUTDOWN_RPC_TIMEOUT: Duration = Duration::from_secs(3);

impl Started {
    /// The TLS client configuration of this launch's host (pinned to the announced
    /// certificate, with the host certificate, offering ALPN `h2`).
    pub(crate) fn tls(
        &self,
        with_client_cert: bool,
    ) -> Result<Option<Arc<rustls::ClientConfig>>, String> {
        let Some(cert) = &self.cert else {
            return Ok(None);
        };
        let server = self
            .handshake
            .cert_lenient()
            .ok_or("AutoMTLS is on but the handshake announced no readable certificate")?;
        dbplugin::testkit::client_config(with_client_cert.then_some(cert), server)
            .map(|c| Some(Arc::new(c)))
            .map_err(|e| e.to_string())
    }

    /// A gRPC channel to the plugin, with the host certificate, whatever ALPN the server
    /// selects (`tls-alpn-h2` judges that; the other rules are still observed).
    pub(crate) async fn channel(&self) -> Result<Channel, String> {
        let tls = self.tls(true)?;
        channel(self.handshake.network(), self.handshake.address(), tls).await
    }

    /// The host's kill sequence, with a limit on the `Shutdown` RPC.
    pub(crate) async fn shutdown(mut self, channel: Option<Channel>) -> Stopped {
        let mut rpc = None;
        if let Some(channel) = channel.clone() {
            let mut controller =
                dbplugin_proto::plugin::grpc_controller_client::GrpcControllerClient::new(channel);
            rpc = tokio::time::timeout(
                SHUTDOWN_RPC_TIMEOUT,
                controller.shutdown(dbplugin_proto::plugin::Empty {}),
            )
            .await
            .ok()
            .map(|r| r.map(|_| ()));
        }
        drop(channel);
        let asked = Instant::now();
        let (status, killed) = match tokio::time::timeout(EXIT_GRACE, self.child.wait()).await {
            Ok(status) => (status.ok(), false),
            Err(_) => {
                let _ = self.child.start_kill();
                (self.child.wait().await.ok(), true)
            }
        };
        let exit_after = asked.elapsed();
        self.finish(rpc, status, killed, exit_after).await
    }

    /// SIGKILLs the process (what the host does after a rejected handshake).
    pub(crate) async fn kill(mut self) -> Stopped {
        let _ = self.child.start_kill();
        let status = self.child.wait().await.ok();
        self.finish(None, status, true, Duration::ZERO).await
    }

    async fn finish(
        self,
        rpc: Option<Result<(), tonic::Status>>,
        status: Option<ExitStatus>,
        killed: bool,
        exit_after: Duration,
    ) -> Stopped {
        for reader in self.readers {
            let _ = tokio::time::timeout(Duration::from_secs(1), reader).await;
        }
        let take =
            |v: &Arc<Mutex<Vec<String>>>| v.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Stopped {
            rpc,
            status,
            killed,
            exit_after,
            stderr: take(&self.stderr),
            stdout_after_handshake: take(&self.stdout),
        }
    }
}

/// Dials without requiring ALPN `h2` (the checker reports what the server selected).
pub(crate) use dbplugin::testkit::dial;

/// A gRPC channel over [`dial`]. Unlike `testkit::connect`, it accepts a TLS connection
/// without ALPN `h2` (grpc-go would refuse it) so that `check` can still judge the services,
/// and it bounds every call to 30 s (a host bounds them with the caller's context).
pub(crate) async fn channel(
    network: &str,
    address: &str,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<Channel, String> {
    let network = network.to_owned();
    let address = address.to_owned();
    let connector = tower::service_fn(move |_: tonic::transport::Uri| {
        let network = network.clone();
        let address = address.clone();
        let tls = tls.clone();
        async move {
            let dialled = dial(&network, &address, tls).await?;
            Ok::<_, std::io::Error>(TokioIo::new(dialled.stream))
        }
    });
    Endpoint::from_static("http://unused")
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .connect_with_connector(connector)
        .await
        .map_err(|e| {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            text
        })
}
