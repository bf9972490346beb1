//! End-to-end tests of `vault-dbplugin`: the built binary against the example plugins, the
//! Go SDK plugin and the broken fixtures.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

mod common;
use common::workspace;

const CLI: &str = env!("CARGO_BIN_EXE_vault-dbplugin");

/// Builds the example and fixture binaries once (a no-op when they are up to date) and
/// returns their paths by package name.
fn binaries() -> &'static Vec<(String, PathBuf)> {
    static BINS: OnceLock<Vec<(String, PathBuf)>> = OnceLock::new();
    BINS.get_or_init(|| common::cargo_build(&["inmem-plugin", "inmem-v4-plugin", "broken-plugin"]))
}

fn bin(name: &str) -> PathBuf {
    binaries()
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, p)| p.clone())
        .unwrap_or_else(|| panic!("{name} was not built"))
}

fn cli(args: &[&str]) -> Output {
    // `demo` finds inmem-plugin next to the CLI, or builds it: make sure it is there.
    let _ = bin("inmem-plugin");
    Command::new(CLI)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run vault-dbplugin")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn check_json(path: &Path, extra: &[&str]) -> (Output, serde_json::Value) {
    let mut args = vec!["check", path.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let out = cli(&args);
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        )
    });
    (out, report)
}

fn not_passed(report: &serde_json::Value) -> Vec<String> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] != "pass" && c["status"] != "skip")
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

fn assert_passes(path: &Path) {
    let (out, report) = check_json(path, &[]);
    assert!(
        out.status.success() && report["ok"] == true,
        "{}",
        serde_json::to_string_pretty(&report).unwrap()
    );
    assert!(not_passed(&report).is_empty());
    // The human table says the same.
    let out = cli(&["check", path.to_str().unwrap()]);
    assert!(out.status.success());
    let table = text(&out.stdout);
    assert!(table.contains("PASS  cookie"), "{table}");
    assert!(table.contains(" 0 failed"), "{table}");
}

#[test]
fn demo_runs_the_full_lifecycle() {
    let out = cli(&["demo"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    for step in [
        "Start (handshake)",
        "Connect (TLS, h2)",
        "MultiplexingSupport",
        "Type",
        "Initialize",
        "NewUser",
        "UpdateUser (password)",
        "UpdateUser (expiration)",
        "DeleteUser",
        "Version (probe)",
        "Close",
        "Shutdown",
    ] {
        assert!(stdout.contains(step), "missing {step}: {stdout}");
    }
    assert!(stdout.contains("\"inmem\""), "{stdout}");
    assert!(stdout.contains("password [redacted]"), "{stdout}");
    assert!(stdout.contains("v0.1.0"), "{stdout}");
    assert!(stdout.contains("lifecycle complete"), "{stdout}");
    assert!(!stdout.contains("A1a-"), "a password was printed: {stdout}");
    assert!(
        !stdout.contains('\u{1b}'),
        "colour outside a terminal: {stdout}"
    );
}

#[test]
fn demo_json_and_any_plugin() {
    let plugin = bin("inmem-plugin");
    let out = cli(&[
        "demo",
        "--plugin",
        plugin.to_str().unwrap(),
        "--config",
        r#"{"connection_url":"inmem://json"}"#,
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let transcript: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(transcript["ok"], true);
    assert!(transcript["failed_step"].is_null());
    let steps = transcript["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 12);
    assert!(
        steps
            .iter()
            .all(|s| s["ok"] == true && s["latency_ms"].is_number())
    );
    assert!(!text(&out.stdout).contains("A1a-"));
}

#[test]
fn demo_names_the_failing_step() {
    // With verify_connection the in-memory plugin refuses a non-inmem URL.
    let out = cli(&["demo", "--config", r#"{"connection_url":"postgres://db"}"#]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("the Initialize step failed"), "{stderr}");
    assert!(text(&out.stdout).contains("FAIL Initialize"));
}

#[test]
fn check_passes_the_v5_example() {
    assert_passes(&bin("inmem-plugin"));
}

#[test]
fn check_passes_the_v4_example() {
    let plugin = bin("inmem-v4-plugin");
    assert_passes(&plugin);
    let (_, report) = check_json(&plugin, &[]);
    assert_eq!(report["kind"], "v4 plugin");
}

#[test]
fn check_passes_the_go_sdk_plugin() {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let go_ok = Command::new("go")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !go_ok {
        assert!(!ci, "go is required under CI=true");
        eprintln!("skipped: no go toolchain");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("goinmem");
    let out = Command::new("go")
        .current_dir(workspace().join("conformance"))
        .args(["build", "-o"])
        .arg(&target)
        .arg("./testdata/goinmem")
        .output()
        .unwrap();
    assert!(out.status.success(), "go build: {}", text(&out.stderr));
    assert_passes(&target);
}

#[test]
fn broken_plugin_without_a_fault_passes() {
    assert_passes(&bin("broken-plugin"));
}

fn assert_fails_only(fault: &str, rule: &str) {
    let (out, report) = check_json(&bin("broken-plugin"), &["--arg", fault]);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert_eq!(report["ok"], false);
    assert_eq!(
        not_passed(&report),
        vec![rule.to_owned()],
        "{}",
        serde_json::to_string_pretty(&report).unwrap()
    );
    let failed = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == rule)
        .unwrap();
    assert!(failed["fix"].as_str().is_some_and(|f| !f.is_empty()));
    assert!(failed["detail"].as_str().is_some_and(|d| !d.is_empty()));
    // The table names the rule and the fix, and the exit code is non-zero.
    let out = cli(&[
        "check",
        bin("broken-plugin").to_str().unwrap(),
        "--arg",
        fault,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let table = text(&out.stdout);
    assert!(table.contains(&format!("FAIL  {rule}")), "{table}");
    assert!(table.contains("fix:"), "{table}");
}

#[test]
fn check_fails_padded_cert() {
    assert_fails_only("padded-cert", "handshake-cert-encoding");
}

#[test]
fn check_fails_no_alpn() {
    assert_fails_only("no-alpn", "tls-alpn-h2");
}

#[test]
fn check_fails_cert_without_client_cert() {
    assert_fails_only(
        "cert-without-client-cert",
        "handshake-no-cert-without-client-cert",
    );
}

#[test]
fn check_fails_shutdown_hangs() {
    assert_fails_only("shutdown-hangs", "shutdown");
}

#[test]
fn check_fails_bad_stderr() {
    assert_fails_only("bad-stderr", "stderr-hclog");
}

#[test]
fn check_fails_stdout_after_handshake() {
    assert_fails_only("stdout-after-handshake", "stdout-quiet");
}

fn sha256_hex(path: &Path) -> String {
    Sha256::digest(std::fs::read(path).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn register_prints_the_sha256_and_commands() {
    let plugin = bin("inmem-plugin");
    let sha = sha256_hex(&plugin);
    if let Ok(out) = Command::new("sha256sum").arg(&plugin).output()
        && out.status.success()
    {
        assert_eq!(
            text(&out.stdout).split_whitespace().next(),
            Some(sha.as_str())
        );
    }
    let out = cli(&["register", plugin.to_str().unwrap(), "--name", "my-inmem"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains(&format!("SHA-256: {sha}")), "{stdout}");
    let register = format!(
        "vault plugin register -sha256={sha} -command=inmem-plugin -version=v0.1.0 database my-inmem"
    );
    assert!(stdout.contains(&register), "{stdout}");
    assert!(
        stdout.contains(&register.replacen("vault", "bao", 1)),
        "{stdout}"
    );
    assert!(stdout.contains("vault secrets enable database"), "{stdout}");
    assert!(
        stdout.contains(
            "vault write database/config/my-inmem plugin_name=my-inmem plugin_version=v0.1.0"
        ),
        "{stdout}"
    );
}

#[test]
fn register_with_version_args_and_config_keys() {
    let plugin = bin("inmem-plugin");
    let sha = sha256_hex(&plugin);
    let out = cli(&[
        "register",
        plugin.to_str().unwrap(),
        "--name",
        "mem",
        "--version",
        "0.1.0",
        "--args",
        "-flag=1",
        "--args",
        "two",
        "--config",
        r#"{"connection_url":"inmem://x"}"#,
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["sha256"], sha);
    assert_eq!(r["version"], "v0.1.0");
    assert_eq!(r["version_source"], "--version");
    assert_eq!(r["config_keys"], serde_json::json!(["connection_url"]));
    assert_eq!(
        r["vault"][0],
        format!(
            "vault plugin register -sha256={sha} -command=inmem-plugin -version=v0.1.0 -args=-flag=1,two database mem"
        )
    );
    assert!(
        r["vault"][2]
            .as_str()
            .unwrap()
            .contains("connection_url=<connection_url>")
    );
    // A version the plugin does not report is kept, with a warning.
    let out = cli(&[
        "register",
        plugin.to_str().unwrap(),
        "--name",
        "mem",
        "--version",
        "v9.9.9",
    ]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("-version=v9.9.9 database mem"));
    assert!(text(&out.stderr).contains("plugin version mismatch"));
}

#[test]
fn no_cookie_launch_is_judged_like_go_plugin() {
    // The fixture prints go-plugin's message itself; the CLI's cookie check agrees.
    let out = Command::new(bin("broken-plugin"))
        .env_remove("VAULT_DATABASE_PLUGIN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert_eq!(text(&out.stderr).lines().count(), 3);
}
