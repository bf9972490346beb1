//! `oci`: an OCI image of a plugin binary, for OpenBao's `plugin` stanza, written as an OCI
//! image layout (and optionally a tar of it) without a container engine.
//!
//! Everything is reproducible byte for byte: the layer is a tar with the binary alone at the
//! root (mode 0755, uid/gid 0, mtime 0, no user or group names), gzip-compressed with a
//! header mtime of 0; the JSON documents have a fixed field order and no timestamps.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::register::{self, shell_quote};
use crate::ui::{self, Progress};

pub(crate) const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub(crate) const MEDIA_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The annotation naming a manifest in an image layout's `index.json` (the tag).
pub(crate) const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// What `oci` was asked to do.
#[derive(Debug)]
pub(crate) struct Options {
    pub(crate) plugin: PathBuf,
    pub(crate) name: String,
    pub(crate) version: Option<String>,
    pub(crate) image: Option<String>,
    pub(crate) out: Option<PathBuf>,
    pub(crate) tar: Option<PathBuf>,
    pub(crate) json: bool,
}

/// The platform of an image (OCI/Go names).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct Platform {
    pub(crate) architecture: String,
    pub(crate) os: String,
}

/// The platform the binary was built for: read from its ELF header, else this build's own
/// target (with `false`: not read from the binary).
pub(crate) fn platform_of(binary: &[u8]) -> (Platform, bool) {
    elf_platform(binary).map_or_else(|| (host_platform(), false), |p| (p, true))
}

fn host_platform() -> Platform {
    let architecture = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    };
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    };
    Platform {
        architecture: architecture.into(),
        os: os.into(),
    }
}

/// `e_machine` (and class, byte order) of an ELF file to the OCI architecture.
fn elf_platform(b: &[u8]) -> Option<Platform> {
    if b.len() < 20 || &b[..4] != b"\x7fELF" {
        return None;
    }
    let is64 = b[4] == 2;
    let little = b[5] == 1;
    let machine = if little {
        u16::from_le_bytes([b[18], b[19]])
    } else {
        u16::from_be_bytes([b[18], b[19]])
    };
    let architecture = match (machine, is64, little) {
        (0x3e, true, _) => "amd64",
        (0xb7, true, _) => "arm64",
        (0x28, false, _) => "arm",
        (0x03, false, _) => "386",
        (0x15, true, true) => "ppc64le",
        (0x15, true, false) => "ppc64",
        (0x16, true, _) => "s390x",
        (0xf3, true, _) => "riscv64",
        (0x102, true, _) => "loong64",
        _ => return None,
    };
    let os = match b[7] {
        9 => "freebsd",
        12 => "openbsd",
        _ => "linux",
    };
    Some(Platform {
        architecture: architecture.into(),
        os: os.into(),
    })
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[derive(Serialize)]
struct Descriptor<'a> {
    #[serde(rename = "mediaType")]
    media_type: &'a str,
    digest: String,
    size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    platform: Option<&'a Platform>,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<std::collections::BTreeMap<&'a str, &'a str>>,
}

impl<'a> Descriptor<'a> {
    fn of(media_type: &'a str, blob: &Blob) -> Self {
        Descriptor {
            media_type,
            digest: blob.digest.clone(),
            size: blob.bytes.len() as u64,
            platform: None,
            annotations: None,
        }
    }
}

#[derive(Serialize)]
struct ImageConfig<'a> {
    architecture: &'a str,
    os: &'a str,
    config: RuntimeConfig,
    rootfs: RootFs,
}

#[derive(Serialize)]
struct RuntimeConfig {
    #[serde(rename = "Entrypoint")]
    entrypoint: Vec<String>,
}

#[derive(Serialize)]
struct RootFs {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: Vec<String>,
}

#[derive(Serialize)]
struct Manifest<'a> {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'a str,
    config: Descriptor<'a>,
    layers: Vec<Descriptor<'a>>,
    annotations: std::collections::BTreeMap<&'a str, &'a str>,
}

#[derive(Serialize)]
struct Index<'a> {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'a str,
    manifests: Vec<Descriptor<'a>>,
}

struct Blob {
    bytes: Vec<u8>,
    /// `sha256:<hex>`.
    digest: String,
}

impl Blob {
    fn new(bytes: Vec<u8>) -> Self {
        let digest = format!("sha256:{}", sha256_hex(&bytes));
        Blob { bytes, digest }
    }
}

/// An image of one binary, as the files of an OCI image layout.
#[derive(Debug)]
pub(crate) struct Image {
    /// (path relative to the layout, content), in writing order.
    pub(crate) files: Vec<(String, Vec<u8>)>,
    pub(crate) manifest_digest: String,
    pub(crate) config_digest: String,
    pub(crate) layer_digest: String,
    pub(crate) diff_id: String,
}

/// The uncompressed layer: the binary alone at the root.
fn layer_tar(binary: &[u8], binary_name: &str) -> std::io::Result<Vec<u8>> {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(binary.len() as u64);
    header.set_mode(0o755);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    let mut builder = tar::Builder::new(Vec::new());
    builder.append_data(&mut header, binary_name, binary)?;
    builder.into_inner()
}

fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes)?;
    encoder.finish()
}

/// Builds the image; `title` and `version` become the manifest's annotations, `version`
/// also the tag (`org.opencontainers.image.ref.name`) in `index.json`.
pub(crate) fn build(
    binary: &[u8],
    binary_name: &str,
    title: &str,
    version: &str,
    platform: &Platform,
) -> Result<Image, String> {
    let io = |e: std::io::Error| format!("cannot build the layer: {e}");
    let tar = layer_tar(binary, binary_name).map_err(io)?;
    let diff_id = format!("sha256:{}", sha256_hex(&tar));
    let layer = Blob::new(gzip(&tar).map_err(io)?);
    drop(tar);
    let config = Blob::new(json(&ImageConfig {
        architecture: &platform.architecture,
        os: &platform.os,
        config: RuntimeConfig {
            entrypoint: vec![format!("/{binary_name}")],
        },
        rootfs: RootFs {
            kind: "layers",
            diff_ids: vec![diff_id.clone()],
        },
    })?);
    let manifest = Blob::new(json(&Manifest {
        schema_version: 2,
        media_type: MEDIA_MANIFEST,
        config: Descriptor::of(MEDIA_CONFIG, &config),
        layers: vec![Descriptor::of(MEDIA_LAYER, &layer)],
        annotations: [
            ("org.opencontainers.image.title", title),
            ("org.opencontainers.image.version", version),
        ]
        .into_iter()
        .collect(),
    })?);
    let mut entry = Descriptor::of(MEDIA_MANIFEST, &manifest);
    entry.platform = Some(platform);
    entry.annotations = Some([(REF_NAME, version)].into_iter().collect());
    let index = json(&Index {
        schema_version: 2,
        media_type: MEDIA_INDEX,
        manifests: vec![entry],
    })?;
    let image = Image {
        manifest_digest: manifest.digest.clone(),
        config_digest: config.digest.clone(),
        layer_digest: layer.digest.clone(),
        diff_id,
        files: vec![
            (
                "oci-layout".into(),
                br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
            ),
            ("index.json".into(), index),
            blob_file(manifest),
            blob_file(config),
            blob_file(layer),
        ],
    };
    Ok(image)
}

fn blob_file(blob: Blob) -> (String, Vec<u8>) {
    let hex = blob.digest.trim_start_matches("sha256:");
    (format!("blobs/sha256/{hex}"), blob.bytes)
}

fn json<T: Serialize>(document: &T) -> Result<Vec<u8>, String> {
    serde_json::to_vec(document).map_err(|e| e.to_string())
}

/// Writes the layout into `dir`: a new or empty directory, or an earlier layout, which is
/// replaced (its `oci-layout`, `index.json` and `blobs/`; nothing else is touched).
pub(crate) fn write_layout(image: &Image, dir: &Path) -> Result<(), String> {
    let err = |what: &Path, e: std::io::Error| format!("cannot write {}: {e}", what.display());
    if dir.exists() {
        let is_layout = dir.join("oci-layout").is_file();
        let empty = std::fs::read_dir(dir)
            .map_err(|e| err(dir, e))?
            .next()
            .is_none();
        if !is_layout && !empty {
            return Err(format!(
                "{} exists and is neither empty nor an OCI image layout; choose another --out",
                dir.display()
            ));
        }
        let blobs = dir.join("blobs");
        if blobs.exists() {
            std::fs::remove_dir_all(&blobs).map_err(|e| err(&blobs, e))?;
        }
    }
    for (path, bytes) in &image.files {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| err(parent, e))?;
        }
        std::fs::write(&target, bytes).map_err(|e| err(&target, e))?;
    }
    Ok(())
}

/// The layout as one tar (what `oci-archive:` and `oras --oci-layout` read), reproducible.
pub(crate) fn layout_tar(image: &Image) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let dir = |builder: &mut tar::Builder<Vec<u8>>, path: &str| {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_size(0);
        h.set_mode(0o755);
        h.set_mtime(0);
        builder.append_data(&mut h, path, std::io::empty())
    };
    dir(&mut builder, "blobs/")?;
    dir(&mut builder, "blobs/sha256/")?;
    for (path, bytes) in &image.files {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        builder.append_data(&mut h, path, bytes.as_slice())?;
    }
    builder.into_inner()
}

#[derive(Debug, Serialize)]
struct Report {
    plugin: String,
    name: String,
    binary_name: String,
    sha256: String,
    image: String,
    version: String,
    version_source: &'static str,
    platform: Platform,
    platform_source: &'static str,
    manifest_digest: String,
    config_digest: String,
    layer_digest: String,
    diff_id: String,
    layout: String,
    tar: Option<String>,
    stanza: String,
    push: Vec<String>,
    notes: Vec<String>,
}

/// OpenBao's server-configuration block for the image.
pub(crate) fn stanza(name: &str, image: &str, version: &str, binary: &str, sha: &str) -> String {
    let q = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
    format!(
        "plugin \"database\" {} {{\n  image       = {}\n  version     = {}\n  binary_name = {}\n  sha256sum   = {}\n}}",
        q(name),
        q(image),
        q(version),
        q(binary),
        q(sha)
    )
}

/// Builds and writes the image, prints the result; returns false on an error.
pub(crate) async fn run(opts: Options) -> bool {
    let error = |e: &dyn std::fmt::Display| {
        anstream::eprintln!("{} {e}", ui::paint(ui::FAIL, "error:"));
        false
    };
    let requested = match opts
        .version
        .as_deref()
        .map(register::canonical_version)
        .transpose()
    {
        Ok(v) => v,
        Err(e) => return error(&format!("--version: {e}")),
    };
    let Some(binary_name) = opts
        .plugin
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
    else {
        return error(&format!("{} names no file", opts.plugin.display()));
    };
    let binary = match std::fs::read(&opts.plugin) {
        Ok(b) => b,
        Err(e) => return error(&format!("cannot read {}: {e}", opts.plugin.display())),
    };
    let mut notes = Vec::new();
    let progress = Progress::start(format!("probing {}", opts.plugin.display()), opts.json);
    let probed = register::probe_version(&opts.plugin, &[]).await;
    progress.finish();
    let (version, version_source) = match register::choose_version(requested, probed, &mut notes) {
        (Some(v), source) => (v, source),
        (None, _) => {
            for note in &notes {
                anstream::eprintln!("{} {note}", ui::paint(ui::SKIP, "note:"));
            }
            return error(&"no version: OpenBao needs one for an OCI plugin; pass --version");
        }
    };
    if version.contains('+') {
        notes.push(format!(
            "{version} contains `+`, which an OCI registry does not accept in a tag"
        ));
    }
    let image_ref = opts
        .image
        .clone()
        .unwrap_or_else(|| format!("registry.example.com/{}", opts.name));
    let out = opts
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}-oci", opts.name)));
    let (platform, from_binary) = platform_of(&binary);
    if !from_binary {
        notes.push(format!(
            "not an ELF binary of a known architecture: the image says {}/{} (this tool's own platform)",
            platform.os, platform.architecture
        ));
    }
    let progress = Progress::start(format!("writing {}", out.display()), opts.json);
    let sha = sha256_hex(&binary);
    let built = {
        let (binary_name, name, version, platform, out, tar) = (
            binary_name.clone(),
            opts.name.clone(),
            version.clone(),
            platform.clone(),
            out.clone(),
            opts.tar.clone(),
        );
        tokio::task::spawn_blocking(move || -> Result<Image, String> {
            let image = build(&binary, &binary_name, &name, &version, &platform)?;
            write_layout(&image, &out)?;
            if let Some(tar) = &tar {
                let bytes = layout_tar(&image).map_err(|e| e.to_string())?;
                std::fs::write(tar, bytes)
                    .map_err(|e| format!("cannot write {}: {e}", tar.display()))?;
            }
            Ok(image)
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r)
    };
    progress.finish();
    let image = match built {
        Ok(i) => i,
        Err(e) => return error(&e),
    };
    let dir = out.display().to_string();
    let mut push = vec![
        format!(
            "oras cp --from-oci-layout {}:{version} {}:{version}",
            shell_quote(&dir),
            shell_quote(&image_ref)
        ),
        format!(
            "skopeo copy oci:{}:{version} docker://{}:{version}",
            shell_quote(&dir),
            shell_quote(&image_ref)
        ),
    ];
    if let Some(tar) = &opts.tar {
        push.push(format!(
            "skopeo copy oci-archive:{}:{version} docker://{}:{version}",
            shell_quote(&tar.display().to_string()),
            shell_quote(&image_ref)
        ));
    }
    let report = Report {
        plugin: opts.plugin.display().to_string(),
        name: opts.name.clone(),
        stanza: stanza(&opts.name, &image_ref, &version, &binary_name, &sha),
        binary_name,
        sha256: sha,
        image: image_ref,
        version,
        version_source,
        platform,
        platform_source: if from_binary { "binary" } else { "host" },
        manifest_digest: image.manifest_digest,
        config_digest: image.config_digest,
        layer_digest: image.layer_digest,
        diff_id: image.diff_id,
        layout: dir,
        tar: opts.tar.as_ref().map(|t| t.display().to_string()),
        push,
        notes,
    };
    if opts.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
        return true;
    }
    anstream::println!(
        "{} {}",
        ui::paint(ui::BOLD, "Manifest digest:"),
        report.manifest_digest
    );
    anstream::println!("{} {}", ui::paint(ui::BOLD, "SHA-256:"), report.sha256);
    let written = match &report.tar {
        Some(t) => format!("{} and {t}", report.layout),
        None => report.layout.clone(),
    };
    anstream::println!(
        "{}",
        ui::paint(
            ui::DIM,
            format!(
                "# OCI image layout ({}/{}, tag {}) written to {written}; push it with one of:",
                report.platform.os, report.platform.architecture, report.version
            )
        )
    );
    for line in &report.push {
        println!("{line}");
    }
    anstream::println!(
        "{}",
        ui::paint(ui::DIM, "# then, in the OpenBao server configuration:")
    );
    println!("{}", report.stanza);
    for note in &report.notes {
        anstream::eprintln!("{} {note}", ui::paint(ui::SKIP, "note:"));
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elf_machines() {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2;
        h[5] = 1;
        h[18] = 0x3e;
        assert_eq!(elf_platform(&h).unwrap().architecture, "amd64");
        h[18] = 0xb7;
        assert_eq!(elf_platform(&h).unwrap().architecture, "arm64");
        assert!(elf_platform(b"#!/bin/sh\n").is_none());
    }

    #[test]
    fn the_stanza_is_quoted() {
        assert_eq!(
            stanza("my", "r/x", "v1.0.0", "p", "ab"),
            "plugin \"database\" \"my\" {\n  image       = \"r/x\"\n  version     = \"v1.0.0\"\n  binary_name = \"p\"\n  sha256sum   = \"ab\"\n}"
        );
    }

    #[test]
    fn builds_are_identical() {
        let p = host_platform();
        let a = build(b"binary", "b", "t", "v1.0.0", &p).unwrap();
        let b = build(b"binary", "b", "t", "v1.0.0", &p).unwrap();
        assert_eq!(a.files, b.files);
        assert_eq!(layout_tar(&a).unwrap(), layout_tar(&b).unwrap());
    }
}
