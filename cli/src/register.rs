//! `register`: the SHA-256 and the exact `vault`/`bao` commands for a plugin binary.

use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use std::time::Duration;

use dbplugin::testkit::PluginProcess;

use crate::launch;
use crate::rpc;
use crate::ui::{self, Progress};

/// What `register` was asked to do.
#[derive(Debug)]
pub(crate) struct Options {
    pub(crate) plugin: PathBuf,
    pub(crate) name: String,
    pub(crate) version: Option<String>,
    pub(crate) args: Vec<String>,
    pub(crate) config: serde_json::Map<String, serde_json::Value>,
    pub(crate) json: bool,
}

#[derive(Debug, Serialize)]
struct Registration {
    plugin: String,
    name: String,
    sha256: String,
    command: String,
    version: Option<String>,
    version_source: &'static str,
    args: Vec<String>,
    config_keys: Vec<String>,
    notes: Vec<String>,
    vault: Vec<String>,
    bao: Vec<String>,
}

/// The SHA-256 of a file, lower-case hex.
pub(crate) fn sha256_file(path: &Path) -> Result<String, String> {
    let mut file =
        std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// `v` + semver, as Vault canonicalises `-version`.
pub(crate) fn canonical_version(v: &str) -> Result<String, String> {
    let v = v.trim();
    let bare = v.strip_prefix('v').unwrap_or(v);
    if crate::check::is_semver(bare) {
        Ok(format!("v{bare}"))
    } else {
        Err(format!("{v:?} is not a semantic version such as v1.2.3"))
    }
}

/// Quotes a word for a POSIX shell when it needs it.
pub(crate) fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// What the plugin said about its version.
#[derive(Debug, Default)]
pub(crate) struct VersionProbe {
    pub(crate) version: Option<String>,
    /// It answered protocol 3 or 4 to a v5 host.
    pub(crate) v4: bool,
    pub(crate) notes: Vec<String>,
}

/// How long to wait for a probe's RPC (the host uses the caller's context).
const RPC_TIMEOUT: Duration = Duration::from_secs(30);

async fn ask_version(plugin: &PluginProcess, notes: &mut Vec<String>) -> Option<String> {
    match tokio::time::timeout(RPC_TIMEOUT, plugin.version()).await {
        Ok(Ok(v)) if !v.is_empty() => return Some(v),
        Ok(Ok(_)) => notes.push("the plugin reports no version".into()),
        Ok(Err(e)) => notes.push(format!("the version probe failed: {}", e.message())),
        Err(_) => notes.push(format!(
            "the version probe did not answer within {} s",
            RPC_TIMEOUT.as_secs()
        )),
    }
    None
}

/// Asks the plugin for its version as Vault does at registration: a metadata-mode launch
/// (for a v4 plugin, a v4 host's metadata-mode launch).
pub(crate) async fn probe_version(program: &Path, args: &[String]) -> VersionProbe {
    let mut probe = VersionProbe::default();
    match launch::metadata_host(program, args).start().await {
        Err(e) => probe.notes.push(format!("the plugin did not start: {e}")),
        Ok(plugin) if matches!(plugin.handshake().app_version, 3 | 4) => {
            probe.v4 = true;
            let _ = plugin.kill().await;
        }
        Ok(plugin) => {
            probe.version = ask_version(&plugin, &mut probe.notes).await;
            let _ = plugin.shutdown_within(launch::SHUTDOWN_RPC_TIMEOUT).await;
        }
    }
    if probe.v4 {
        match launch::v4_metadata_host(program, args).start().await {
            Err(e) => probe.notes.push(format!("the plugin did not start: {e}")),
            Ok(plugin) => {
                probe.version = ask_version(&plugin, &mut probe.notes).await;
                let _ = plugin.shutdown_within(launch::SHUTDOWN_RPC_TIMEOUT).await;
            }
        }
    }
    probe
}

/// The version to use: `--version` (canonical; warned about when the plugin reports
/// another), else the plugin's own when Vault accepts it. Returns it and its source.
pub(crate) fn choose_version(
    requested: Option<String>,
    probed: VersionProbe,
    notes: &mut Vec<String>,
) -> (Option<String>, &'static str) {
    notes.extend(probed.notes);
    match (requested, probed.version) {
        (Some(v), Some(reported)) if reported != v => {
            notes.push(format!(
                "the plugin reports {reported}: registering with -version={v} will fail with \
                 \"plugin version mismatch\""
            ));
            (Some(v), "--version")
        }
        (Some(v), _) => (Some(v), "--version"),
        (None, Some(reported)) => match canonical_version(&reported) {
            Ok(v) if v == reported => (Some(v), "plugin"),
            _ => {
                notes.push(format!(
                    "the plugin reports {reported:?}, which Vault will reject as a version; \
                     pass --version"
                ));
                (None, "none")
            }
        },
        (None, None) => (None, "none"),
    }
}

/// The config keys the plugin stores from `Initialize` with the given config and
/// `verify_connection=false`, from a launch as Vault makes for a connection.
async fn probe_config_keys(opts: &Options, v4: bool, notes: &mut Vec<String>) -> Vec<String> {
    let host = if v4 {
        launch::v4_metadata_host(&opts.plugin, &opts.args)
    } else {
        launch::host(&opts.plugin, &opts.args)
    };
    let plugin = match host.start().await {
        Ok(p) => p,
        Err(e) => {
            notes.push(format!("the plugin did not start: {e}"));
            return Vec::new();
        }
    };
    let stored = if v4 {
        rpc::v4_init(&plugin.channel(), &opts.config, false).await
    } else {
        let db = plugin.database(Some(&rpc::multiplex_id()));
        let out = db
            .initialize(serde_json::Value::Object(opts.config.clone()), false)
            .await;
        let _ = db.close().await;
        out
    };
    let _ = plugin.shutdown_within(launch::SHUTDOWN_RPC_TIMEOUT).await;
    match stored {
        Ok(map) => map
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| k != dbplugin::SUPPORTED_CREDENTIAL_TYPES_KEY)
            .collect(),
        Err(e) => {
            notes.push(format!(
                "Initialize with {} and verify_connection=false failed ({}); \
                 the config keys are not known",
                serde_json::Value::Object(opts.config.clone()),
                e.message()
            ));
            Vec::new()
        }
    }
}

/// Prints the registration; returns false on an error.
pub(crate) async fn run(opts: Options) -> bool {
    let path = opts.plugin.clone();
    let hashing = tokio::task::spawn_blocking(move || sha256_file(&path));
    let requested = match opts.version.as_deref().map(canonical_version).transpose() {
        Ok(v) => v,
        Err(e) => {
            anstream::eprintln!("{} --version: {e}", ui::paint(ui::FAIL, "error:"));
            return false;
        }
    };
    let progress = Progress::start(format!("probing {}", opts.plugin.display()), opts.json);
    let mut notes = Vec::new();
    let probed = probe_version(&opts.plugin, &opts.args).await;
    let v4 = probed.v4;
    let (version, version_source) = choose_version(requested, probed, &mut notes);
    let config_keys = probe_config_keys(&opts, v4, &mut notes).await;
    let sha = hashing.await.map_err(|e| e.to_string()).and_then(|r| r);
    progress.finish();
    let sha = match sha {
        Ok(s) => s,
        Err(e) => {
            anstream::eprintln!("{} {e}", ui::paint(ui::FAIL, "error:"));
            return false;
        }
    };
    let command = opts
        .plugin
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let commands = |tool: &str| -> Vec<String> {
        let mut register = format!(
            "{tool} plugin register -sha256={sha} -command={}",
            shell_quote(&command)
        );
        if let Some(v) = &version {
            register.push_str(&format!(" -version={v}"));
        }
        if !opts.args.is_empty() {
            register.push_str(&format!(" -args={}", shell_quote(&opts.args.join(","))));
        }
        register.push_str(&format!(" database {}", shell_quote(&opts.name)));
        let mut config = format!(
            "{tool} write database/config/{} plugin_name={}",
            shell_quote(&opts.name),
            shell_quote(&opts.name)
        );
        if let Some(v) = &version {
            config.push_str(&format!(" plugin_version={v}"));
        }
        for key in &config_keys {
            config.push_str(&format!(" {key}=<{key}>"));
        }
        config.push_str(" allowed_roles='*'");
        vec![register, format!("{tool} secrets enable database"), config]
    };
    let (vault, bao) = (commands("vault"), commands("bao"));
    let registration = Registration {
        plugin: opts.plugin.display().to_string(),
        name: opts.name.clone(),
        sha256: sha.clone(),
        command: command.clone(),
        version,
        version_source,
        args: opts.args.clone(),
        config_keys,
        notes,
        vault,
        bao,
    };
    if opts.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&registration).unwrap_or_default()
        );
        return true;
    }
    anstream::println!("{} {sha}", ui::paint(ui::BOLD, "SHA-256:"));
    anstream::println!(
        "{}",
        ui::paint(
            ui::DIM,
            format!(
                "# copy {} into the server's plugin_directory as {command}, then:",
                opts.plugin.display()
            )
        )
    );
    for line in &registration.vault {
        println!("{line}");
    }
    anstream::println!("{}", ui::paint(ui::DIM, "# OpenBao:"));
    for line in &registration.bao {
        println!("{line}");
    }
    for note in &registration.notes {
        anstream::eprintln!("{} {note}", ui::paint(ui::SKIP, "note:"));
    }
    true
}
