//! Replays every committed fuzz corpus file (`fuzz/corpus/<target>/`) through the body of its
//! fuzz target, so that an input the fuzzer once found interesting can never start to panic
//! unnoticed. The fuzzing itself (coverage-guided, under sanitizers, on nightly) is
//! `scripts/fuzz`; this is its regression test on the stable toolchain.

use std::path::PathBuf;

use dbplugin::__fuzz;

type Body = fn(&[u8]);

const TARGETS: &[(&str, Body)] = &[
    ("config_struct", __fuzz::config_struct),
    ("template_parse", __fuzz::template_parse),
    ("statements_split", __fuzz::statements_split),
    ("handshake_line", __fuzz::handshake_line),
    ("unwrap_response", __fuzz::unwrap_response_input),
    ("launch_env", __fuzz::launch_env_input),
];

#[test]
fn every_committed_corpus_input_runs_without_a_panic() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let mut total = 0;
    for (target, body) in TARGETS {
        let dir = root.join(target);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{target}: the corpus is empty");
        for file in &files {
            let data = std::fs::read(file).unwrap();
            let outcome = std::panic::catch_unwind(|| body(&data));
            assert!(
                outcome.is_ok(),
                "{target}: {} panics (reproduce: cd fuzz && cargo +nightly fuzz run {target} {})",
                file.display(),
                file.strip_prefix(root.parent().unwrap()).unwrap().display()
            );
        }
        eprintln!("{target}: {} corpus inputs replayed", files.len());
        total += files.len();
    }
    eprintln!("{total} corpus inputs replayed, no panic");
}
