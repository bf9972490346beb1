//! `check`: a conformance report for any database plugin binary.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::launch::{self, Launch, Started, Stopped};
use dbplugin::testkit::DatabaseClient;

use crate::rpc;
use crate::ui::{self, Progress};

/// What `check` was asked to do.
#[derive(Debug)]
pub(crate) struct Options {
    pub(crate) plugin: PathBuf,
    pub(crate) args: Vec<String>,
    pub(crate) config: serde_json::Map<String, serde_json::Value>,
    pub(crate) json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Pass,
    Fail,
    Skip,
}

/// One rule: its id, what it requires, and the fix when it fails.
struct Rule {
    id: &'static str,
    title: &'static str,
    fix: &'static str,
}

const RULES: &[Rule] = &[
    Rule {
        id: "cookie",
        title: "without the magic cookie: go-plugin's 3-line message on stderr, exit 1, empty stdout",
        fix: "check VAULT_DATABASE_PLUGIN=926a0820-aea2-be28-51d6-83cdf00e8edb before anything else; if it differs, write go-plugin's exact three lines to stderr, nothing to stdout, and exit with status 1",
    },
    Rule {
        id: "start",
        title: "launched as Vault does, prints a handshake line",
        fix: "print the handshake line as the first stdout line within 60 s; see the stderr shown above",
    },
    Rule {
        id: "negotiation-v5",
        title: "a v5 host (PLUGIN_PROTOCOL_VERSIONS=5,6) gets 6 or 5 (a v4 plugin answers its lowest)",
        fix: "pick the highest version in both PLUGIN_PROTOCOL_VERSIONS and the plugin's set; with no common version answer the lowest supported one",
    },
    Rule {
        id: "negotiation-v4",
        title: "a v4 host (3,4): a v5 plugin answers its lowest (rejected), a v4 plugin answers 4",
        fix: "when no offered version is supported, answer the plugin's lowest version (the host then rejects it); a v4 plugin answers 4 and serves plaintext gRPC in metadata mode",
    },
    Rule {
        id: "handshake-format",
        title: "handshake line: 6 fields, core 1, app version, unix|tcp, address, grpc",
        fix: "print exactly `1|<version>|<unix|tcp>|<address>|grpc|<cert>` followed by a newline",
    },
    Rule {
        id: "handshake-cert-encoding",
        title: "certificate field: unpadded standard base64 of the certificate DER",
        fix: "encode the DER with the standard alphabet and no `=` padding (Go's base64.RawStdEncoding)",
    },
    Rule {
        id: "handshake-no-cert-without-client-cert",
        title: "no certificate field without PLUGIN_CLIENT_CERT",
        fix: "leave field 6 empty when PLUGIN_CLIENT_CERT is not set: a host without TLS panics on a certificate",
    },
    Rule {
        id: "tls-client-cert-required",
        title: "TLS requires the host's client certificate (a dial without one fails)",
        fix: "require a client certificate and accept exactly the one from PLUGIN_CLIENT_CERT (a pinning ClientCertVerifier)",
    },
    Rule {
        id: "tls-alpn-h2",
        title: "TLS selects ALPN h2",
        fix: "set the TLS server's ALPN protocols to [\"h2\"]: grpc-go rejects a handshake without a selected ALPN protocol",
    },
    Rule {
        id: "tls-cert-san-localhost",
        title: "plugin certificate has DNS SAN localhost and is currently valid",
        fix: "generate the certificate with subjectAltName DNS:localhost (the host verifies the name localhost), valid from a little before now",
    },
    Rule {
        id: "service-health",
        title: "grpc.health.v1.Health/Check{service:\"plugin\"} is SERVING",
        fix: "register the gRPC health service and set the status of \"plugin\" to SERVING",
    },
    Rule {
        id: "service-controller",
        title: "plugin.GRPCController/Shutdown is served",
        fix: "serve plugin.GRPCController: Shutdown replies, stops the server and exits",
    },
    Rule {
        id: "service-stdio",
        title: "plugin.GRPCStdio/StreamStdio is served",
        fix: "serve plugin.GRPCStdio: a stream that stays open (and may send nothing) until the host cancels it",
    },
    Rule {
        id: "service-broker",
        title: "plugin.GRPCBroker/StartStream is served",
        fix: "serve plugin.GRPCBroker: accept the stream and read until the host closes it",
    },
    Rule {
        id: "service-multiplexing",
        title: "MultiplexingSupport answers (UNIMPLEMENTED means not multiplexed)",
        fix: "serve pluginutil.multiplexing.PluginMultiplexing/MultiplexingSupport, or return UNIMPLEMENTED; any other error makes the host fail the connection",
    },
    Rule {
        id: "version-format",
        title: "logical.PluginVersion/Version: `v<semver>` or empty",
        fix: "report the version as `v` + semantic version (e.g. v1.2.3), or an empty string",
    },
    Rule {
        id: "database-type",
        title: "Database/Type answers a non-empty name",
        fix: "serve the database service of the negotiated protocol (dbplugin.v5.Database for 5/6, dbplugin.Database for 3/4) and return the type name",
    },
    Rule {
        id: "multiplex-isolation",
        title: "multiplex ids are isolated (Close on one id keeps the others; unknown ids refused)",
        fix: "key instances by the `multiplex_id` metadata: Initialize/Type create, NewUser/UpdateUser/DeleteUser/Close on an unknown id fail with \"no database instance found\", Close removes only its own id",
    },
    Rule {
        id: "shutdown",
        title: "Shutdown answers and the process exits 0 within 2 s",
        fix: "answer GRPCController/Shutdown at once, then stop serving and exit with status 0 (the host waits forever for the reply, then SIGKILLs after 2 s)",
    },
    Rule {
        id: "stderr-hclog",
        title: "stderr lines are hclog JSON (string @level, @message, @timestamp with 6 fractional digits)",
        fix: "log one JSON object per line with string \"@level\" (trace|debug|info|warn|error), string \"@message\" and \"@timestamp\" like 2026-01-02T15:04:05.000000Z; a non-string field panics the host",
    },
    Rule {
        id: "stdout-quiet",
        title: "nothing on stdout after the handshake",
        fix: "write logs to stderr; after the handshake line stdout is discarded by the host",
    },
];

#[derive(Debug, Serialize)]
struct Outcome {
    id: &'static str,
    title: &'static str,
    status: Status,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<&'static str>,
}

#[derive(Debug, Serialize)]
struct Report {
    plugin: String,
    kind: String,
    ok: bool,
    passed: usize,
    failed: usize,
    skipped: usize,
    checks: Vec<Outcome>,
}

#[derive(Default)]
struct Results {
    outcomes: Vec<Outcome>,
}

impl Results {
    fn set(&mut self, id: &'static str, status: Status, detail: impl Into<String>) {
        let rule = RULES
            .iter()
            .find(|r| r.id == id)
            .expect("every outcome names a known rule");
        self.outcomes.retain(|o| o.id != id);
        self.outcomes.push(Outcome {
            id,
            title: rule.title,
            status,
            detail: detail.into(),
            fix: (status == Status::Fail).then_some(rule.fix),
        });
    }
    fn pass(&mut self, id: &'static str, detail: impl Into<String>) {
        self.set(id, Status::Pass, detail);
    }
    fn fail(&mut self, id: &'static str, detail: impl Into<String>) {
        self.set(id, Status::Fail, detail);
    }
    fn skip(&mut self, id: &'static str, detail: impl Into<String>) {
        self.set(id, Status::Skip, detail);
    }
    fn judge(&mut self, id: &'static str, r: Result<String, String>) {
        match r {
            Ok(d) => self.pass(id, d),
            Err(d) => self.fail(id, d),
        }
    }
    fn skip_rest(&mut self, why: &str) {
        for rule in RULES {
            if !self.outcomes.iter().any(|o| o.id == rule.id) {
                self.skip(rule.id, why);
            }
        }
    }
    fn sorted(mut self) -> Vec<Outcome> {
        let pos = |id: &str| RULES.iter().position(|r| r.id == id).unwrap_or(usize::MAX);
        self.outcomes.sort_by_key(|o| pos(o.id));
        self.outcomes
    }
}

/// `MAJOR.MINOR.PATCH[-pre][+build]`.
pub(crate) fn is_semver(s: &str) -> bool {
    let (core, build) = s.split_once('+').map_or((s, None), |(c, b)| (c, Some(b)));
    let (core, pre) = core
        .split_once('-')
        .map_or((core, None), |(c, p)| (c, Some(p)));
    let ident_ok = |x: &str| {
        !x.is_empty()
            && x.split('.')
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    };
    let nums: Vec<&str> = core.split('.').collect();
    nums.len() == 3
        && nums.iter().all(|n| {
            !n.is_empty()
                && n.chars().all(|c| c.is_ascii_digit())
                && (n.len() == 1 || !n.starts_with('0'))
        })
        && pre.is_none_or(ident_ok)
        && build.is_none_or(ident_ok)
}

/// At most 80 characters of `s`.
fn short(s: &str) -> String {
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}

fn status_text(e: &tonic::Status) -> String {
    format!("{:?}: {}", e.code(), e.message())
}

/// Runs every check; returns whether all passed.
pub(crate) async fn run(opts: Options) -> bool {
    let progress = Progress::start(format!("checking {}", opts.plugin.display()), opts.json);
    let mut results = Results::default();
    let kind = checks(&opts, &mut results).await;
    progress.finish();
    let checks = results.sorted();
    let count = |s: Status| checks.iter().filter(|o| o.status == s).count();
    let report = Report {
        plugin: opts.plugin.display().to_string(),
        kind,
        ok: count(Status::Fail) == 0,
        passed: count(Status::Pass),
        failed: count(Status::Fail),
        skipped: count(Status::Skip),
        checks,
    };
    if opts.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print_table(&report);
    }
    report.ok
}

fn print_table(report: &Report) {
    anstream::println!(
        "{} {} ({})",
        ui::paint(ui::BOLD, "vault-dbplugin check:"),
        report.plugin,
        report.kind
    );
    let width = RULES.iter().map(|r| r.id.len()).max().unwrap_or(0);
    for o in &report.checks {
        let mark = match o.status {
            Status::Pass => ui::paint(ui::PASS, "PASS"),
            Status::Fail => ui::paint(ui::FAIL, "FAIL"),
            Status::Skip => ui::paint(ui::SKIP, "SKIP"),
        };
        anstream::println!("{mark}  {:<width$}  {}", o.id, o.detail);
        if o.status == Status::Fail {
            anstream::println!(
                "      {:<width$}  {} {}",
                "",
                ui::paint(ui::DIM, "rule:"),
                o.title
            );
            if let Some(fix) = o.fix {
                anstream::println!(
                    "      {:<width$}  {} {fix}",
                    "",
                    ui::paint(ui::BOLD, "fix:")
                );
            }
        }
    }
    let summary = format!(
        "{} passed, {} failed, {} skipped",
        report.passed, report.failed, report.skipped
    );
    let style = if report.ok { ui::PASS } else { ui::FAIL };
    anstream::println!("{}", ui::paint(style, summary));
}

/// All observations of stderr and stdout, from every launch.
#[derive(Default)]
struct Streams {
    stderr: Vec<(String, String)>,
    stdout: Vec<(String, String)>,
}

impl Streams {
    fn add(&mut self, launch: &str, stopped: &Stopped) {
        let mut stderr = stopped.stderr.as_slice();
        // A SIGKILL can cut the last line short; that is not the plugin's fault.
        if stopped.killed
            && let Some((last, rest)) = stderr.split_last()
            && hclog_line(last).is_err()
        {
            stderr = rest;
        }
        self.stderr
            .extend(stderr.iter().map(|l| (launch.to_owned(), l.clone())));
        self.stdout.extend(
            stopped
                .stdout_after_handshake
                .iter()
                .map(|l| (launch.to_owned(), l.clone())),
        );
    }
}

async fn checks(opts: &Options, r: &mut Results) -> String {
    // 1. No cookie.
    let mut no_cookie = Launch::v5(&opts.plugin, &opts.args);
    no_cookie.cookie = false;
    r.judge("cookie", check_cookie(&no_cookie).await);

    // 2. The v5 host's launch.
    let mut streams = Streams::default();
    let v5 = Launch::v5(&opts.plugin, &opts.args);
    let first = match v5.start().await {
        Ok(p) => p,
        Err(e) => {
            r.fail("start", e);
            r.skip_rest("not reached: the plugin did not start");
            return "did not start".into();
        }
    };
    r.pass(
        "start",
        format!("handshake after {} ms", first.startup.as_millis()),
    );
    let answered = first.handshake.app_version();
    let is_v4 = matches!(answered, Some(3 | 4));
    match answered {
        Some(v @ (5 | 6)) => r.pass("negotiation-v5", format!("offered 5,6, answered {v}")),
        Some(v @ (3 | 4)) => r.pass(
            "negotiation-v5",
            format!(
                "v4 plugin: offered 5,6, answered {v}; a v5 host rejects it and falls back to v4"
            ),
        ),
        Some(v) => r.fail("negotiation-v5", format!("offered 5,6, answered {v}")),
        None => r.fail(
            "negotiation-v5",
            format!("field 2 of {:?} is not a version", first.handshake.line),
        ),
    }

    // 3. The v4 host's launch: versions 3,4, no PLUGIN_CLIENT_CERT, metadata mode.
    let mut v4 = Launch::v5(&opts.plugin, &opts.args);
    v4.versions = "3,4".into();
    v4.auto_mtls = false;
    v4.metadata_mode = true;
    check_v4_host(&v4, is_v4, r, &mut streams).await;

    // 4. The main session: the v5 launch, or for a v4 plugin a v4 launch with AutoMTLS.
    let (main, kind) = if is_v4 {
        streams.add("v5 launch", &first.kill().await);
        let mut m = Launch::v5(&opts.plugin, &opts.args);
        m.versions = "3,4".into();
        match m.start().await {
            Ok(p) => (p, "v4 plugin".to_owned()),
            Err(e) => {
                r.fail("start", format!("v4 launch with AutoMTLS: {e}"));
                r.skip_rest("not reached: the plugin did not start");
                return "v4 plugin".into();
            }
        }
    } else {
        let v = answered.unwrap_or_default();
        (first, format!("v5 plugin, protocol {v}"))
    };
    let kind = session(opts, main, is_v4, r, &mut streams, kind).await;

    judge_stderr(r, &streams);
    if streams.stdout.is_empty() {
        r.pass("stdout-quiet", "no stdout lines after the handshake");
    } else {
        let (launch, line) = &streams.stdout[0];
        r.fail(
            "stdout-quiet",
            format!(
                "{} line(s) after the handshake, first ({launch}): {:?}",
                streams.stdout.len(),
                short(line)
            ),
        );
    }
    r.skip_rest("not reached");
    kind
}

async fn check_cookie(launch: &Launch) -> Result<String, String> {
    let out = launch.run_to_exit(Duration::from_secs(10)).await?;
    if out.status.code() != Some(1) {
        return Err(format!("exit status {} (expected 1)", out.status));
    }
    if !out.stdout.is_empty() {
        return Err(format!("stdout is not empty: {:?}", out.stdout));
    }
    if out.stderr.trim_end() != launch::NOT_A_PLUGIN.trim_end() {
        return Err(format!(
            "stderr is not go-plugin's message: {:?}",
            out.stderr
        ));
    }
    Ok("exit 1, go-plugin's 3-line message, empty stdout".into())
}

async fn check_v4_host(launch: &Launch, is_v4: bool, r: &mut Results, streams: &mut Streams) {
    let plugin = match launch.start().await {
        Ok(p) => p,
        Err(e) => {
            r.fail("negotiation-v4", format!("v4 host launch: {e}"));
            r.skip(
                "handshake-no-cert-without-client-cert",
                "not reached: the v4 host launch failed",
            );
            return;
        }
    };
    let line = plugin.handshake.line.clone();
    if plugin.handshake.cert_field().is_empty() {
        r.pass(
            "handshake-no-cert-without-client-cert",
            "launched without PLUGIN_CLIENT_CERT: field 6 empty",
        );
    } else {
        r.fail(
            "handshake-no-cert-without-client-cert",
            format!(
                "launched without PLUGIN_CLIENT_CERT, the line has a certificate: {:?}",
                short(&line)
            ),
        );
    }
    let answered = plugin.handshake.app_version();
    let stopped = match (is_v4, answered) {
        (false, Some(v @ (5 | 6))) => {
            r.pass(
                "negotiation-v4",
                format!("offered 3,4, answered {v}: the v4 host rejects it"),
            );
            plugin.kill().await
        }
        (true, Some(4)) => {
            // Metadata mode: plaintext gRPC.
            let outcome = match launch::channel(
                plugin.handshake.network(),
                plugin.handshake.address(),
                None,
            )
            .await
            {
                Err(e) => Err(format!("answered 4, but plaintext gRPC failed: {e}")),
                Ok(channel) => match rpc::v4_type(&channel).await {
                    Ok(t) => Ok(format!(
                        "offered 3,4, answered 4; metadata mode serves plaintext gRPC (Type {t:?})"
                    )),
                    Err(e) => Err(format!(
                        "answered 4, but Type over plaintext failed: {}",
                        status_text(&e)
                    )),
                },
            };
            r.judge("negotiation-v4", outcome);
            plugin.kill().await
        }
        (_, Some(v)) => {
            r.fail("negotiation-v4", format!("offered 3,4, answered {v}"));
            plugin.kill().await
        }
        (_, None) => {
            r.fail(
                "negotiation-v4",
                format!("offered 3,4, unusable line {line:?}"),
            );
            plugin.kill().await
        }
    };
    streams.add("v4 host launch", &stopped);
}

fn check_format(line: &str, fields: &[String], expect_version: &[u32]) -> Result<String, String> {
    if fields.len() != 6 {
        return Err(format!("{} fields (expected 6): {line:?}", fields.len()));
    }
    if fields[0] != "1" {
        return Err(format!("core version {:?} (expected 1)", fields[0]));
    }
    match fields[1].parse::<u32>() {
        Ok(v) if expect_version.contains(&v) => {}
        _ => {
            return Err(format!(
                "app version {:?} (expected one of {expect_version:?})",
                fields[1]
            ));
        }
    }
    if fields[2] != "unix" && fields[2] != "tcp" {
        return Err(format!("network {:?} (expected unix or tcp)", fields[2]));
    }
    if fields[3].is_empty() {
        return Err("empty address".into());
    }
    if fields[4] != "grpc" {
        return Err(format!("protocol {:?} (expected grpc)", fields[4]));
    }
    Ok(format!(
        "1|{}|{}|<address>|grpc|<cert>",
        fields[1], fields[2]
    ))
}

fn check_cert_encoding(field: &str) -> Result<String, String> {
    if field.is_empty() {
        return Err("AutoMTLS is on but field 6 is empty".into());
    }
    if field.contains('=') {
        return Err(
            "field 6 has `=` padding (go-plugin decodes with RawStdEncoding and fails)".into(),
        );
    }
    let der = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(field)
        .map_err(|e| format!("field 6 is not unpadded standard base64: {e}"))?;
    x509_parser::parse_x509_certificate(&der)
        .map_err(|e| format!("field 6 is not an X.509 certificate DER: {e}"))?;
    if field.len() <= 50 {
        return Err("field 6 is 50 characters or shorter, go-plugin ignores it".into());
    }
    Ok(format!(
        "{} bytes of DER, unpadded standard base64",
        der.len()
    ))
}

fn check_san(der: Option<&[u8]>) -> Result<String, String> {
    let der = der.ok_or("no readable certificate in the handshake")?;
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let san = cert
        .subject_alternative_name()
        .map_err(|e| format!("bad subjectAltName: {e}"))?
        .ok_or("the certificate has no subjectAltName extension")?;
    let names: Vec<String> = san
        .value
        .general_names
        .iter()
        .map(|n| n.to_string())
        .collect();
    let has = san.value.general_names.iter().any(|n| {
        matches!(n, x509_parser::extensions::GeneralName::DNSName(d) if d.eq_ignore_ascii_case("localhost"))
    });
    if !has {
        return Err(format!("subjectAltName has no DNS localhost: {names:?}"));
    }
    if !cert.validity().is_valid() {
        return Err("the certificate is not currently valid".into());
    }
    Ok(format!("subjectAltName {}", names.join(", ")))
}

/// Dials without a client certificate: the server must refuse.
async fn check_client_cert_required(plugin: &Started) -> Result<String, String> {
    let tls = plugin.tls(false)?;
    let dialled = launch::dial(plugin.handshake.network(), plugin.handshake.address(), tls).await;
    let mut dialled = match dialled {
        Err(e) => return Ok(format!("refused at the TLS handshake: {e}")),
        Ok(d) => d,
    };
    // TLS 1.3: the server judges the client certificate after the client finished, so a
    // refusal arrives as an alert on the first read.
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";
    let _ = dialled.stream.write_all(preface).await;
    let _ = dialled.stream.flush().await;
    let mut buf = [0u8; 64];
    match tokio::time::timeout(Duration::from_secs(3), dialled.stream.read(&mut buf)).await {
        Ok(Err(e)) => Ok(format!("refused: {e}")),
        Ok(Ok(0)) => Ok("refused: connection closed".into()),
        Ok(Ok(_)) => Err(
            "a TLS connection without a client certificate was accepted and answered HTTP/2".into(),
        ),
        Err(_) => Err("a TLS connection without a client certificate stayed open for 3 s".into()),
    }
}

async fn check_alpn(plugin: &Started) -> Result<String, String> {
    let tls = plugin.tls(true)?;
    let dialled = launch::dial(plugin.handshake.network(), plugin.handshake.address(), tls)
        .await
        .map_err(|e| format!("TLS with the host certificate failed: {e}"))?;
    match dialled.alpn.as_deref() {
        Some(b"h2") => Ok("h2 selected".into()),
        Some(other) => Err(format!(
            "selected {:?} instead of h2",
            String::from_utf8_lossy(other)
        )),
        None => Err(
            "the server selected no ALPN protocol (grpc-go: \"missing selected ALPN property\")"
                .into(),
        ),
    }
}

async fn session(
    opts: &Options,
    plugin: Started,
    is_v4: bool,
    r: &mut Results,
    streams: &mut Streams,
    mut kind: String,
) -> String {
    let h = plugin.handshake.clone();
    let versions: &[u32] = if is_v4 { &[3, 4] } else { &[5, 6] };
    r.judge(
        "handshake-format",
        check_format(&h.line, &h.fields, versions),
    );
    r.judge(
        "handshake-cert-encoding",
        check_cert_encoding(h.cert_field()),
    );
    r.judge(
        "tls-cert-san-localhost",
        check_san(h.cert_lenient().as_deref()),
    );
    r.judge(
        "tls-client-cert-required",
        check_client_cert_required(&plugin).await,
    );
    r.judge("tls-alpn-h2", check_alpn(&plugin).await);

    let channel = match plugin.channel().await {
        Ok(c) => c,
        Err(e) => {
            let why = format!("not reached: cannot open gRPC over TLS: {e}");
            for id in [
                "service-health",
                "service-controller",
                "service-stdio",
                "service-broker",
                "service-multiplexing",
                "version-format",
                "database-type",
                "multiplex-isolation",
            ] {
                r.skip(id, why.clone());
            }
            r.skip("shutdown", why.clone());
            let stopped = plugin.kill().await;
            streams.add("main launch", &stopped);
            return kind;
        }
    };

    r.judge("service-health", check_health(&channel).await);
    r.judge("service-stdio", check_stdio(&channel).await);
    r.judge("service-broker", check_broker(&channel).await);
    let multiplexed = match rpc::multiplexing(&channel).await {
        Ok(m) => {
            r.pass("service-multiplexing", format!("supported: {m}"));
            m
        }
        Err(e) if e.code() == tonic::Code::Unimplemented => {
            r.pass(
                "service-multiplexing",
                "UNIMPLEMENTED: the host runs one process per connection",
            );
            false
        }
        Err(e) => {
            r.fail("service-multiplexing", status_text(&e));
            false
        }
    };
    if multiplexed {
        kind.push_str(", multiplexed");
    }
    r.judge("version-format", check_version(&channel).await);
    if is_v4 {
        r.judge(
            "database-type",
            match rpc::v4_type(&channel).await {
                Ok(t) if !t.is_empty() => Ok(format!("dbplugin.Database/Type: {t:?}")),
                Ok(_) => Err("empty type name".into()),
                Err(e) => Err(status_text(&e)),
            },
        );
        r.skip("multiplex-isolation", "v4 plugins are not multiplexed");
    } else {
        let db = DatabaseClient::new(channel.clone(), Some(&rpc::multiplex_id()));
        r.judge(
            "database-type",
            match db.type_name().await {
                Ok(t) if !t.is_empty() => Ok(format!("dbplugin.v5.Database/Type: {t:?}")),
                Ok(_) => Err("empty type name".into()),
                Err(e) => Err(status_text(&e)),
            },
        );
        let _ = db.close().await;
        r.judge(
            "multiplex-isolation",
            check_isolation(&channel, &opts.config, multiplexed).await,
        );
    }

    let stopped = plugin.shutdown(Some(channel)).await;
    judge_exit(r, &stopped);
    streams.add("main launch", &stopped);
    kind
}

fn judge_exit(r: &mut Results, stopped: &Stopped) {
    match &stopped.rpc {
        Some(Err(e)) if e.code() == tonic::Code::Unimplemented => {
            r.fail("service-controller", status_text(e));
        }
        Some(_) => r.pass("service-controller", "Shutdown answered"),
        None => r.pass(
            "service-controller",
            "served (Shutdown was accepted; see the shutdown check)",
        ),
    }
    let outcome = if stopped.rpc.is_none() {
        Err(format!(
            "Shutdown did not answer within {} s (a host waits forever); the process was killed",
            launch::SHUTDOWN_RPC_TIMEOUT.as_secs()
        ))
    } else {
        match stopped.status {
            _ if stopped.killed => Err(format!(
                "the process did not exit within {} s and was killed",
                launch::EXIT_GRACE.as_secs()
            )),
            Some(s) if s.success() => Ok(format!(
                "exit status 0 after {} ms",
                stopped.exit_after.as_millis()
            )),
            Some(s) => Err(format!("the process exited with {s}")),
            None => Err("the exit status is unknown".into()),
        }
    };
    r.judge("shutdown", outcome);
}

async fn check_health(channel: &tonic::transport::Channel) -> Result<String, String> {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let mut client = HealthClient::new(channel.clone());
    let response = tokio::time::timeout(
        Duration::from_secs(5),
        client.check(HealthCheckRequest {
            service: "plugin".into(),
        }),
    )
    .await
    .map_err(|_| "Check did not answer within 5 s".to_owned())?
    .map_err(|e| status_text(&e))?
    .into_inner();
    let status = response.status();
    if status == tonic_health::pb::health_check_response::ServingStatus::Serving {
        Ok("\"plugin\" is SERVING".into())
    } else {
        Err(format!("\"plugin\" is {}", status.as_str_name()))
    }
}

/// A streaming call is "served" when it opens, or stays pending (no headers yet) for a
/// second; UNIMPLEMENTED or another error fails.
fn judge_stream<T>(
    out: Result<Result<T, tonic::Status>, tokio::time::error::Elapsed>,
) -> Result<String, String> {
    match out {
        Ok(Ok(_)) => Ok("the stream opened".into()),
        Err(_) => Ok("the stream is open (no headers within 1 s)".into()),
        Ok(Err(e)) => Err(status_text(&e)),
    }
}

async fn check_stdio(channel: &tonic::transport::Channel) -> Result<String, String> {
    let mut client =
        dbplugin_proto::plugin::grpc_stdio_client::GrpcStdioClient::new(channel.clone());
    judge_stream(tokio::time::timeout(Duration::from_secs(1), client.stream_stdio(())).await)
}

async fn check_broker(channel: &tonic::transport::Channel) -> Result<String, String> {
    let mut client =
        dbplugin_proto::plugin::grpc_broker_client::GrpcBrokerClient::new(channel.clone());
    judge_stream(
        tokio::time::timeout(
            Duration::from_secs(1),
            client.start_stream(tokio_stream::pending::<dbplugin_proto::plugin::ConnInfo>()),
        )
        .await,
    )
}

async fn check_version(channel: &tonic::transport::Channel) -> Result<String, String> {
    match rpc::version(channel).await {
        Ok(v) if v.is_empty() => Ok("empty (the host ignores it)".into()),
        Ok(v) => match v.strip_prefix('v') {
            Some(bare) if is_semver(bare) => Ok(v),
            _ => Err(format!(
                "{v:?}: Vault canonicalises versions to v<semver>, so registration fails"
            )),
        },
        Err(e) if e.code() == tonic::Code::Unimplemented => {
            Ok("UNIMPLEMENTED (the host reads it as empty)".into())
        }
        Err(e) => Err(status_text(&e)),
    }
}

const NOT_FOUND: &str = "no database instance found";

async fn check_isolation(
    channel: &tonic::transport::Channel,
    config: &serde_json::Map<String, serde_json::Value>,
    multiplexed: bool,
) -> Result<String, String> {
    let id = || DatabaseClient::new(channel.clone(), Some(&rpc::multiplex_id()));
    let (a, b, c) = (id(), id(), id());
    for (name, db) in [("A", &a), ("B", &b)] {
        db.type_name()
            .await
            .map_err(|e| format!("Type on id {name}: {}", status_text(&e)))?;
        db.initialize(serde_json::Value::Object(config.clone()), false).await.map_err(|e| {
            format!(
                "Initialize on id {name} with {} and verify_connection=false failed ({}); pass --config with a config the plugin accepts",
                serde_json::Value::Object(config.clone()),
                status_text(&e)
            )
        })?;
    }
    let refused = |what: &str, out: Result<(), tonic::Status>| match out {
        Err(e) if e.message().contains(NOT_FOUND) => Ok(()),
        Err(e) => Err(format!(
            "{what} was refused, but not with {NOT_FOUND:?}: {}",
            status_text(&e)
        )),
        Ok(()) => Err(format!("{what} succeeded")),
    };
    if multiplexed {
        let expiration = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
        refused(
            "NewUser on a never-initialized id C",
            c.new_user_with_password("check", &rpc::password(), &[], expiration)
                .await
                .map(|_| ()),
        )?;
        refused("Close on a never-initialized id C", c.close().await)?;
    }
    a.close()
        .await
        .map_err(|e| format!("Close on id A: {}", status_text(&e)))?;
    if multiplexed {
        refused("a second Close on id A", a.close().await)?;
    }
    b.type_name()
        .await
        .map_err(|e| format!("Type on id B after closing A: {}", status_text(&e)))?;
    b.close()
        .await
        .map_err(|e| format!("Close on id B after closing A: {}", status_text(&e)))?;
    Ok(if multiplexed {
        "ids A and B initialized; closing A kept B; unknown ids refused with \"no database instance found\"".into()
    } else {
        "not multiplexed: closing one id kept the other working".into()
    })
}

fn judge_stderr(r: &mut Results, streams: &Streams) {
    let lines: Vec<&(String, String)> = streams
        .stderr
        .iter()
        .filter(|(_, l)| !l.trim().is_empty())
        .collect();
    for (n, (launch, line)) in lines.iter().enumerate() {
        if let Err(why) = hclog_line(line) {
            r.fail(
                "stderr-hclog",
                format!("line {} ({launch}): {why}: {:?}", n + 1, short(line)),
            );
            return;
        }
    }
    r.pass(
        "stderr-hclog",
        format!("{} line(s), all hclog JSON", lines.len()),
    );
}

/// Judges one stderr line as the host does.
pub(crate) fn hclog_line(line: &str) -> Result<(), String> {
    let value: serde_json::Value = serde_json::from_str(line).map_err(|_| "not JSON".to_owned())?;
    let object = value.as_object().ok_or("not a JSON object")?;
    let level = match object.get("@level") {
        Some(serde_json::Value::String(s)) => s.trim().to_ascii_lowercase(),
        Some(other) => return Err(format!("@level is not a string ({other}): the host panics")),
        None => return Err("no @level".into()),
    };
    if !["trace", "debug", "info", "warn", "error"].contains(&level.as_str()) {
        return Err(format!(
            "@level {level:?} is not trace|debug|info|warn|error"
        ));
    }
    match object.get("@message") {
        Some(serde_json::Value::String(_)) => {}
        Some(_) => return Err("@message is not a string: the host panics".into()),
        None => return Err("no @message".into()),
    }
    match object.get("@timestamp") {
        Some(serde_json::Value::String(t)) if timestamp_ok(t) => Ok(()),
        Some(serde_json::Value::String(t)) => Err(format!(
            "@timestamp {t:?} is not YYYY-MM-DDTHH:MM:SS.ffffff with exactly six fractional digits and Z or ±hh:mm"
        )),
        Some(_) => Err("@timestamp is not a string: the host panics".into()),
        None => Err("no @timestamp".into()),
    }
}

fn timestamp_ok(t: &str) -> bool {
    let b = t.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    if b.len() < 27 {
        return false;
    }
    let head = digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19] == b'.'
        && digits(20..26);
    let zone = &t[26..];
    let zone_ok = zone == "Z"
        || (zone.len() == 6
            && (zone.starts_with('+') || zone.starts_with('-'))
            && zone.as_bytes()[3] == b':'
            && digits(27..29)
            && digits(30..32));
    head && zone_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hclog_lines() {
        assert!(
            hclog_line(
                r#"{"@level":"info","@message":"m","@timestamp":"2026-01-02T15:04:05.123456Z"}"#
            )
            .is_ok()
        );
        assert!(hclog_line(r#"{"@level":"warn","@message":"m","@timestamp":"2026-01-02T15:04:05.123456+02:00"}"#).is_ok());
        assert!(
            hclog_line(r#"{"@level":3,"@message":"m","@timestamp":"2026-01-02T15:04:05.123456Z"}"#)
                .is_err()
        );
        assert!(
            hclog_line(
                r#"{"@level":"info","@message":"m","@timestamp":"2026-01-02T15:04:05.123Z"}"#
            )
            .is_err()
        );
        assert!(
            hclog_line(
                r#"{"@level":"warning","@message":"m","@timestamp":"2026-01-02T15:04:05.123456Z"}"#
            )
            .is_err()
        );
        assert!(hclog_line("plain text").is_err());
    }

    #[test]
    fn semver() {
        assert!(is_semver("1.2.3"));
        assert!(is_semver("0.1.0-rc.1+build.5"));
        assert!(!is_semver("1.2"));
        assert!(!is_semver("01.2.3"));
        assert!(!is_semver("v1.2.3"));
    }

    #[test]
    fn every_rule_is_unique() {
        for (i, r) in RULES.iter().enumerate() {
            assert!(RULES[i + 1..].iter().all(|o| o.id != r.id), "{}", r.id);
        }
    }
}
