//! Helpers shared by the CLI's integration tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The workspace the CLI lives in.
pub(crate) fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the CLI lives in the workspace")
        .to_path_buf()
}

/// `cargo build -p P...` (a no-op when up to date); the executables by target name.
pub(crate) fn cargo_build(packages: &[&str]) -> Vec<(String, PathBuf)> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut args = vec!["build"];
    for p in packages {
        args.extend(["-p", p]);
    }
    args.push("--message-format=json-render-diagnostics");
    let out = Command::new(cargo)
        .current_dir(workspace())
        .args(&args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("run cargo build");
    assert!(out.status.success(), "cargo build failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .filter_map(|m| {
            Some((
                m["target"]["name"].as_str()?.to_owned(),
                PathBuf::from(m["executable"].as_str()?),
            ))
        })
        .collect()
}
