//! `vault-dbplugin oci`: the image layout of the in-memory example, validated independently
//! of the CLI's own code (digests, sizes, media types, the layer's one file, reproducibility).

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use sha2::{Digest, Sha256};

mod common;

const CLI: &str = env!("CARGO_BIN_EXE_vault-dbplugin");

fn inmem_plugin() -> PathBuf {
    common::cargo_build(&["inmem-plugin"])
        .into_iter()
        .find_map(|(name, path)| (name == "inmem-plugin").then_some(path))
        .expect("inmem-plugin was built")
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn run(args: &[&str]) -> (String, String) {
    let out = Command::new(CLI)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run vault-dbplugin");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stdout}\n{stderr}");
    (stdout, stderr)
}

/// Reads a blob named by a descriptor, checking its digest and size.
fn blob(layout: &Path, descriptor: &Value) -> Vec<u8> {
    let digest = descriptor["digest"].as_str().unwrap();
    let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
    let bytes = std::fs::read(layout.join("blobs/sha256").join(hex)).expect("the blob exists");
    assert_eq!(sha256(&bytes), hex, "blob content matches its digest");
    assert_eq!(descriptor["size"].as_u64(), Some(bytes.len() as u64));
    bytes
}

struct Checked {
    manifest_digest: String,
    files: Vec<(String, Vec<u8>)>,
}

/// Validates a layout as a registry client would read it; returns the manifest digest.
fn validate(layout: &Path, binary: &[u8], binary_name: &str, version: &str) -> Checked {
    let oci_layout: Value =
        serde_json::from_slice(&std::fs::read(layout.join("oci-layout")).unwrap()).unwrap();
    assert_eq!(
        oci_layout,
        serde_json::json!({"imageLayoutVersion": "1.0.0"})
    );

    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1);
    let entry = &manifests[0];
    assert_eq!(
        entry["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        entry["annotations"]["org.opencontainers.image.ref.name"],
        version
    );

    let manifest: Value = serde_json::from_slice(&blob(layout, entry)).unwrap();
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.version"],
        version
    );
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.title"],
        "inmem"
    );
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(
        layers[0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );

    let config: Value = serde_json::from_slice(&blob(layout, &manifest["config"])).unwrap();
    assert_eq!(config["os"], "linux");
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    assert_eq!(config["architecture"], arch);
    assert_eq!(config["rootfs"]["type"], "layers");
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!([format!("/{binary_name}")])
    );
    assert_eq!(entry["platform"]["os"], config["os"]);
    assert_eq!(entry["platform"]["architecture"], config["architecture"]);

    // The layer: gzip (header mtime 0) of a tar with exactly the binary at the root.
    let compressed = blob(layout, &layers[0]);
    assert_eq!(&compressed[..3], b"\x1f\x8b\x08", "gzip");
    assert_eq!(&compressed[4..8], &[0, 0, 0, 0], "gzip header mtime 0");
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(compressed.as_slice())
        .read_to_end(&mut tar)
        .unwrap();
    assert_eq!(
        config["rootfs"]["diff_ids"],
        serde_json::json!([format!("sha256:{}", sha256(&tar))])
    );
    let mut archive = tar::Archive::new(tar.as_slice());
    let mut entries = 0;
    for file in archive.entries().unwrap() {
        let mut file = file.unwrap();
        entries += 1;
        let header = file.header().clone();
        assert_eq!(header.entry_type(), tar::EntryType::Regular);
        assert_eq!(file.path().unwrap().to_str(), Some(binary_name));
        assert_eq!(header.mode().unwrap(), 0o755);
        assert_eq!(header.uid().unwrap(), 0);
        assert_eq!(header.gid().unwrap(), 0);
        assert_eq!(header.mtime().unwrap(), 0);
        let mut content = Vec::new();
        file.read_to_end(&mut content).unwrap();
        assert_eq!(sha256(&content), sha256(binary));
    }
    assert_eq!(entries, 1, "the layer holds exactly one file");

    let mut files = Vec::new();
    for name in ["oci-layout", "index.json"] {
        files.push((name.to_owned(), std::fs::read(layout.join(name)).unwrap()));
    }
    let mut blobs: Vec<_> = std::fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    blobs.sort();
    assert_eq!(blobs.len(), 3, "manifest, config and layer only");
    for path in blobs {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        files.push((name, std::fs::read(path).unwrap()));
    }
    Checked {
        manifest_digest: entry["digest"].as_str().unwrap().to_owned(),
        files,
    }
}

#[test]
fn oci_layout_of_the_inmem_example() {
    let plugin = inmem_plugin();
    let binary = std::fs::read(&plugin).unwrap();
    let binary_sha = sha256(&binary);
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first");
    let archive = dir.path().join("inmem.tar");
    let (stdout, _) = run(&[
        "oci",
        plugin.to_str().unwrap(),
        "--name",
        "inmem",
        "--out",
        first.to_str().unwrap(),
        "--tar",
        archive.to_str().unwrap(),
    ]);
    // The version came from the plugin's version RPC.
    let checked = validate(&first, &binary, "inmem-plugin", "v0.1.0");
    assert!(
        stdout.contains(&format!("Manifest digest: {}", checked.manifest_digest)),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("SHA-256: {binary_sha}")),
        "{stdout}"
    );
    let stanza = format!(
        "plugin \"database\" \"inmem\" {{\n  image       = \"registry.example.com/inmem\"\n  version     = \"v0.1.0\"\n  binary_name = \"inmem-plugin\"\n  sha256sum   = \"{binary_sha}\"\n}}"
    );
    assert!(stdout.contains(&stanza), "{stdout}");
    let dir_text = first.to_str().unwrap();
    assert!(
        stdout.contains(&format!(
            "oras cp --from-oci-layout {dir_text}:v0.1.0 registry.example.com/inmem:v0.1.0"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "skopeo copy oci:{dir_text}:v0.1.0 docker://registry.example.com/inmem:v0.1.0"
        )),
        "{stdout}"
    );

    // The archive holds the same layout at its root.
    let mut from_tar = Vec::new();
    let bytes = std::fs::read(&archive).unwrap();
    let mut tar = tar::Archive::new(bytes.as_slice());
    for file in tar.entries().unwrap() {
        let mut file = file.unwrap();
        if file.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let path = file.path().unwrap().to_string_lossy().into_owned();
        let name = path.rsplit('/').next().unwrap().to_owned();
        let mut content = Vec::new();
        file.read_to_end(&mut content).unwrap();
        from_tar.push((name, content));
    }
    from_tar.sort();
    let mut on_disk = checked.files.clone();
    on_disk.sort();
    assert_eq!(from_tar, on_disk);

    // Again, with --json, an explicit version and image, into another directory: the same
    // bytes (the version is the same), and the JSON says what the text did.
    let second = dir.path().join("second");
    let second_archive = dir.path().join("second.tar");
    let (stdout, _) = run(&[
        "oci",
        plugin.to_str().unwrap(),
        "--name",
        "inmem",
        "--version",
        "0.1.0",
        "--image",
        "registry.example.com/acme/inmem",
        "--out",
        second.to_str().unwrap(),
        "--tar",
        second_archive.to_str().unwrap(),
        "--json",
    ]);
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let again = validate(&second, &binary, "inmem-plugin", "v0.1.0");
    assert_eq!(again.manifest_digest, checked.manifest_digest);
    assert_eq!(again.files, checked.files, "byte-identical layouts");
    assert_eq!(report["manifest_digest"], checked.manifest_digest);
    assert_eq!(report["sha256"], binary_sha);
    assert_eq!(report["version_source"], "--version");
    assert!(
        report["stanza"]
            .as_str()
            .unwrap()
            .contains("image       = \"registry.example.com/acme/inmem\"")
    );
    assert_eq!(bytes, std::fs::read(&second_archive).unwrap());
}
