//! The README's commands name this binary and only configuration keys that exist.

#[path = "../src/keys.rs"]
#[allow(dead_code, unreachable_pub)]
mod keys;

#[test]
fn readme_matches_the_plugin() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let problems = dbplugin::testkit::readme_problems(
        &readme,
        keys::BINARY,
        keys::CONFIG_KEYS,
        keys::HOST_KEYS,
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
