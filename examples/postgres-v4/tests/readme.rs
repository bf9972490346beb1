//! The README's commands name this binary and only configuration keys that exist.

#[path = "../src/keys.rs"]
#[allow(dead_code, unreachable_pub)]
mod keys;

/// The shell commands of the README's ```` ```sh ```` blocks, `\` continuations joined.
fn commands(readme: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut in_sh = false;
    for line in readme.lines() {
        let line = line.trim();
        if line.starts_with("```") {
            in_sh = line == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        if let Some(body) = line.strip_suffix('\\') {
            current.push_str(body);
            current.push(' ');
        } else {
            current.push_str(line);
            out.push(std::mem::take(&mut current));
        }
    }
    out
}

/// The `key=value` arguments of a command (values may be quoted and contain spaces).
fn keys_of(command: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut words = Vec::new();
    for c in command.chars() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => {}
            (None, ' ') => words.push(std::mem::take(&mut word)),
            _ => word.push(c),
        }
    }
    words.push(word);
    for w in words.iter().skip(3) {
        if let Some((k, _)) = w.split_once('=') {
            keys.push(k.to_owned());
        }
    }
    keys
}

#[test]
fn readme_commands_match_the_plugin() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let cmds = commands(&readme);

    let register: Vec<&String> = cmds
        .iter()
        .filter(|c| c.contains(" plugin register "))
        .collect();
    assert!(!register.is_empty(), "no `plugin register` command");
    for c in &register {
        let command = c
            .split_whitespace()
            .find_map(|w| w.strip_prefix("-command="))
            .expect("-command=");
        assert_eq!(command, keys::BINARY, "{c}");
        assert!(c.contains("-version=v0.1.0"), "{c}");
        assert!(
            c.trim_end()
                .ends_with(&format!("database {}", keys::BINARY)),
            "{c}"
        );
    }

    let configs: Vec<&String> = cmds
        .iter()
        .filter(|c| c.contains(" write database/config/"))
        .collect();
    assert!(
        !configs.is_empty(),
        "no `write database/config/...` command"
    );
    for c in configs {
        let keys = keys_of(c);
        assert!(keys.iter().any(|k| k == "plugin_name"), "{c}");
        for k in &keys {
            assert!(
                keys::CONFIG_KEYS.contains(&k.as_str()) || keys::HOST_KEYS.contains(&k.as_str()),
                "README configures `{k}`, which the plugin does not accept"
            );
        }
        assert!(c.contains(&format!("plugin_name={}", keys::BINARY)), "{c}");
    }

    for c in cmds.iter().filter(|c| c.starts_with("cargo build")) {
        assert!(c.ends_with(&format!("-p {}", keys::BINARY)), "{c}");
    }
    for c in cmds.iter().filter(|c| c.contains("sha256sum ")) {
        assert!(
            c.contains(&format!("target/release/{}", keys::BINARY)),
            "{c}"
        );
    }
}

#[test]
fn every_config_key_is_documented() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    for k in keys::CONFIG_KEYS {
        assert!(
            readme.contains(&format!("`{k}`")),
            "`{k}` missing from the README's key table"
        );
    }
}
