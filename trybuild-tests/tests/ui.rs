//! Compile-pass and compile-fail cases for `#[database_plugin]`.
//!
//! Bless with `TRYBUILD=overwrite cargo test -p trybuild-tests`, then review the `.stderr`
//! diff like code. The `.stderr` files are pinned to one stable toolchain (see
//! `PINNED_MINOR`); on any other toolchain only the pass cases run.

/// The toolchain the `.stderr` files were written with: stable 1.95.
const PINNED_MINOR: &str = "1.95.";

fn pinned() -> bool {
    let out = std::process::Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("--version")
        .output()
        .expect("rustc --version");
    let version = String::from_utf8_lossy(&out.stdout);
    version.starts_with(&format!("rustc {PINNED_MINOR}"))
        && !version.contains("nightly")
        && !version.contains("beta")
}

#[test]
#[cfg_attr(any(miri, windows), ignore)]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    if pinned() || std::env::var_os("DBPLUGIN_UI_ANY_TOOLCHAIN").is_some() {
        t.compile_fail("tests/ui/fail/*/*.rs");
    } else {
        eprintln!(
            "compile-fail cases skipped: the .stderr files are pinned to rustc {PINNED_MINOR}x"
        );
    }
}
