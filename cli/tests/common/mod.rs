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

/// The executables of `packages`, by target name, from `cargo build --workspace --bins` (a
/// no-op when up to date). Building every binary in one invocation gives them one feature
/// resolution, the one `scripts/test-all` and the Go conformance peer build, so the runtime is
/// not compiled again per package.
pub(crate) fn cargo_build(packages: &[&str]) -> Vec<(String, PathBuf)> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let args = [
        "build",
        "--workspace",
        "--bins",
        "--message-format=json-render-diagnostics",
    ];
    let out = Command::new(cargo)
        .current_dir(workspace())
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("run cargo build");
    assert!(out.status.success(), "cargo build failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .filter(|m| {
            let id = m["package_id"].as_str().unwrap_or_default();
            packages.iter().any(|p| package_name(id) == Some(*p))
        })
        .filter_map(|m| {
            Some((
                m["target"]["name"].as_str()?.to_owned(),
                PathBuf::from(m["executable"].as_str()?),
            ))
        })
        .collect()
}

/// The package name in a cargo package id: `path+file:///…/inmem#inmem-plugin@0.1.0` or
/// `path+file:///…/inmem-plugin#0.1.0`.
fn package_name(id: &str) -> Option<&str> {
    let (url, frag) = id.rsplit_once('#')?;
    match frag.split_once('@') {
        Some((name, _)) => Some(name),
        None => url.rsplit('/').next(),
    }
}
