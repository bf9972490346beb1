//! `demo`: one full credential lifecycle against a plugin, as Vault would drive it.

use std::os::unix::process::ExitStatusExt as _;
use std::path::PathBuf;
use std::time::Duration;

use dbplugin::testkit::{self, ClientCertificate, DatabaseClient, PluginProcess};
use serde::Serialize;
use tonic::transport::Channel;

use crate::launch;
use crate::rpc::{self, timed};
use crate::ui::{self, Progress};

/// The default creation statement (PostgreSQL syntax; the in-memory plugin records it).
pub(crate) const DEFAULT_STATEMENT: &str =
    "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';";

/// What `demo` was asked to do.
#[derive(Debug)]
pub(crate) struct Options {
    pub(crate) plugin: PathBuf,
    pub(crate) args: Vec<String>,
    pub(crate) config: serde_json::Map<String, serde_json::Value>,
    pub(crate) statements: Vec<String>,
    pub(crate) role: String,
    pub(crate) json: bool,
}

#[derive(Debug, Serialize)]
struct Step {
    step: &'static str,
    ok: bool,
    result: String,
    latency_ms: f64,
}

#[derive(Debug, Serialize)]
struct Transcript {
    plugin: String,
    ok: bool,
    failed_step: Option<&'static str>,
    steps: Vec<Step>,
}

struct Recorder {
    json: bool,
    steps: Vec<Step>,
}

impl Recorder {
    fn record<T, E: std::fmt::Display>(
        &mut self,
        step: &'static str,
        out: Result<T, E>,
        latency: Duration,
        describe: impl FnOnce(&T) -> String,
    ) -> Option<T> {
        let (ok, result, value) = match out {
            Ok(v) => (true, describe(&v), Some(v)),
            Err(e) => (false, e.to_string(), None),
        };
        if !self.json {
            let mark = if ok {
                ui::paint(ui::PASS, "ok  ")
            } else {
                ui::paint(ui::FAIL, "FAIL")
            };
            anstream::println!(
                "{mark} {:<26} {}  {}",
                step,
                ui::paint(
                    ui::DIM,
                    format!("{:>9}", format!("{:.1} ms", latency.as_secs_f64() * 1000.0))
                ),
                result
            );
        }
        self.steps.push(Step {
            step,
            ok,
            result,
            latency_ms: (latency.as_secs_f64() * 1_000_000.0).round() / 1000.0,
        });
        value
    }

    fn failed(&self) -> Option<&'static str> {
        self.steps.iter().find(|s| !s.ok).map(|s| s.step)
    }
}

fn status(e: &tonic::Status) -> String {
    format!("{:?}: {}", e.code(), e.message())
}

/// Runs the lifecycle; returns whether every step passed.
pub(crate) async fn run(opts: Options) -> bool {
    let mut rec = Recorder {
        json: opts.json,
        steps: Vec::new(),
    };
    if !opts.json {
        anstream::println!(
            "{} {}",
            ui::paint(ui::BOLD, "vault-dbplugin demo:"),
            opts.plugin.display()
        );
    }
    lifecycle(&opts, &mut rec).await;
    let failed = rec.failed();
    if opts.json {
        let transcript = Transcript {
            plugin: opts.plugin.display().to_string(),
            ok: failed.is_none(),
            failed_step: failed,
            steps: rec.steps,
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&transcript).unwrap_or_default()
        );
    } else if failed.is_none() {
        anstream::println!("{}", ui::paint(ui::PASS, "lifecycle complete"));
    }
    if let Some(step) = failed {
        anstream::eprintln!("{} the {step} step failed", ui::paint(ui::FAIL, "error:"));
    }
    failed.is_none()
}

async fn lifecycle(opts: &Options, rec: &mut Recorder) {
    let cert = ClientCertificate::generate();
    let host = launch::host(&opts.plugin, &opts.args).client_certificate(cert.clone());
    let progress = Progress::start(format!("starting {}", opts.plugin.display()), opts.json);
    let (started, latency) = timed(host.start()).await;
    progress.finish();
    let started = started
        .map_err(|e| e.to_string())
        .and_then(|p| match p.handshake().app_version {
            5 | 6 => Ok(p),
            // Dropping the process kills it, as the host does after a rejected handshake.
            v @ (3 | 4) => Err(format!(
                "this is a v4 plugin (it answered protocol {v} to a v5 host); demo drives the v5 protocol"
            )),
            v => Err(format!("unusable protocol version {v} in the handshake")),
        });
    let Some(plugin) = rec.record("Start (handshake)", started, latency, |p| {
        let h = p.handshake();
        format!(
            "pid {}, protocol {}, {} {}, AutoMTLS with a P-521 host certificate",
            p.pid().unwrap_or_default(),
            h.app_version,
            h.network,
            h.address
        )
    }) else {
        return;
    };
    // The test host has already dialled once while starting (that connection carries the
    // probes and Shutdown); this step times a dial of its own, with the same host
    // certificate, and the lifecycle's calls use it.
    let (channel, latency) = timed(testkit::connect(plugin.handshake(), Some(&cert))).await;
    let Some(channel) = rec.record("Connect (TLS, h2)", channel, latency, |_| {
        "mutual TLS, ALPN h2, pinned to the handshake certificate".into()
    }) else {
        let _ = plugin.kill().await;
        return;
    };
    steps(opts, rec, &plugin, channel).await;
    let (stopped, latency) = timed(plugin.shutdown_within(launch::SHUTDOWN_RPC_TIMEOUT)).await;
    let outcome = match stopped {
        Err(e) => Err(e.to_string()),
        Ok((false, _)) => Err(format!(
            "Shutdown did not answer within {} s",
            launch::SHUTDOWN_RPC_TIMEOUT.as_secs()
        )),
        Ok((true, status)) if status.success() => Ok(status),
        Ok((true, status)) if status.signal() == Some(9) => Err(format!(
            "the process did not exit within {} s and was killed ({status})",
            launch::EXIT_GRACE.as_secs()
        )),
        Ok((true, status)) => Err(format!("the process exited with {status}")),
    };
    rec.record("Shutdown", outcome, latency, |s| {
        format!("process exited ({s})")
    });
}

/// The lifecycle's calls; `channel` is dropped at the end, before `Shutdown`.
async fn steps(opts: &Options, rec: &mut Recorder, plugin: &PluginProcess, channel: Channel) {
    let (out, latency) = timed(plugin.multiplexing_supported()).await;
    if rec
        .record(
            "MultiplexingSupport",
            out.map_err(|e| status(&e)),
            latency,
            |m| {
                if *m {
                    "multiplexed: one process serves many connections".into()
                } else {
                    "not multiplexed: one process per connection".into()
                }
            },
        )
        .is_none()
    {
        return;
    }
    let id = rpc::multiplex_id();
    let db = DatabaseClient::new(channel, Some(&id));
    let (out, latency) = timed(db.type_name()).await;
    if rec
        .record("Type", out.map_err(|e| status(&e)), latency, |t| {
            format!("{t:?} (multiplex_id {id})")
        })
        .is_none()
    {
        return;
    }
    let config = serde_json::Value::Object(opts.config.clone());
    let (out, latency) = timed(db.initialize(config, true)).await;
    if rec
        .record("Initialize", out.map_err(|e| status(&e)), latency, |c| {
            let keys: Vec<&str> = c.keys().map(String::as_str).collect();
            format!(
                "verify_connection=true; saved config keys: {} (values not shown)",
                if keys.is_empty() {
                    "none".into()
                } else {
                    keys.join(", ")
                }
            )
        })
        .is_none()
    {
        return;
    }
    let now = time::OffsetDateTime::now_utc();
    let expiration = now + time::Duration::hours(1);
    let statements: Vec<&str> = opts.statements.iter().map(String::as_str).collect();
    let (out, latency) =
        timed(db.new_user_with_password(&opts.role, &rpc::password(), &statements, expiration))
            .await;
    let Some(username) = rec.record("NewUser", out.map_err(|e| status(&e)), latency, |u| {
        format!(
            "username {u:?}, password [redacted], expires {}",
            rfc3339(expiration)
        )
    }) else {
        let _ = db.close().await;
        return;
    };
    let (out, latency) = timed(db.update_password(&username, &rpc::password())).await;
    let mut ok = rec
        .record(
            "UpdateUser (password)",
            out.map_err(|e| status(&e)),
            latency,
            |()| "new password [redacted]".into(),
        )
        .is_some();
    if ok {
        let new_expiration = now + time::Duration::hours(2);
        let (out, latency) = timed(db.update_expiration(&username, new_expiration)).await;
        ok = rec
            .record(
                "UpdateUser (expiration)",
                out.map_err(|e| status(&e)),
                latency,
                |()| format!("expires {}", rfc3339(new_expiration)),
            )
            .is_some();
    }
    let (out, latency) = timed(db.delete_user(&username)).await;
    ok &= rec
        .record("DeleteUser", out.map_err(|e| status(&e)), latency, |()| {
            format!("{username:?} removed")
        })
        .is_some();
    if ok {
        let (out, latency) = timed(plugin.version()).await;
        let out = match out {
            Err(e) if e.code() == tonic::Code::Unimplemented => Ok(String::new()),
            other => other.map_err(|e| status(&e)),
        };
        rec.record("Version (probe)", out, latency, |v| {
            if v.is_empty() {
                "no version reported".into()
            } else {
                v.clone()
            }
        });
    }
    let (out, latency) = timed(db.close()).await;
    rec.record("Close", out.map_err(|e| status(&e)), latency, |()| {
        format!("instance {id} closed")
    });
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
