//! Finding (or building) the in-memory example for `demo`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::ui::Progress;

/// The example's package and binary name.
pub(crate) const INMEM: &str = "inmem-plugin";

/// `inmem-plugin` next to our own executable, else built with cargo in the workspace.
pub(crate) fn inmem_plugin(quiet: bool) -> Result<PathBuf, String> {
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        for candidate in [dir.join(INMEM), dir.join("..").join(INMEM)] {
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    let root = workspace_root().ok_or_else(|| {
        format!(
            "cannot find {INMEM}: it is not next to this executable and no Cargo workspace \
             with examples/inmem was found here; pass --plugin PATH"
        )
    })?;
    build(&root, INMEM, quiet)
}

/// The workspace this CLI was compiled in, else the current directory or an ancestor.
pub(crate) fn workspace_root() -> Option<PathBuf> {
    let compiled = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf);
    let here = std::env::current_dir().ok();
    compiled
        .into_iter()
        .chain(
            here.iter()
                .flat_map(|d| d.ancestors().map(Path::to_path_buf)),
        )
        .find(|d| d.join("Cargo.toml").is_file() && d.join("examples").join("inmem").is_dir())
}

/// `cargo build -p <package>`; returns the path of its binary.
pub(crate) fn build(root: &Path, package: &str, quiet: bool) -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let progress = Progress::start(
        format!("building {package} (cargo build -p {package})"),
        quiet,
    );
    let output = Command::new(&cargo)
        .current_dir(root)
        .args([
            "build",
            "-p",
            package,
            "--message-format=json-render-diagnostics",
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    progress.finish();
    if !output.status.success() {
        return Err(format!(
            "cargo build -p {package} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == package)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| format!("cargo build -p {package} produced no executable"))
}
