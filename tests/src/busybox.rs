//! A runnable test image: Debian's static busybox (`busybox-static`) as one layer, in an OCI
//! layout tarball that both ctrs import (`ctr images import`).

use std::path::Path;

use crate::layers::{digest_of, hex};

/// Where Debian's `busybox-static` installs the binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// Debian's runc shim (package containerd).
pub const SHIM: &str = "/usr/bin/containerd-shim-runc-v2";

/// The applets the image links to busybox.
const APPLETS: &[&str] = &[
    "sh", "echo", "cat", "sleep", "ls", "true", "false", "id", "env", "ps", "kill", "touch",
];

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(1_700_000_000);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// The layer: `/bin/busybox`, its applets as symlinks, and the directories a container needs.
pub fn layer() -> Vec<u8> {
    let busybox = std::fs::read(BUSYBOX)
        .unwrap_or_else(|e| panic!("{BUSYBOX} (Debian package busybox-static): {e}"));
    let mut b = tar::Builder::new(Vec::new());
    for dir in ["bin/", "dev/", "etc/", "proc/", "sys/", "tmp/", "root/"] {
        let mut h = header(tar::EntryType::Directory, 0o755, 0);
        b.append_data(&mut h, dir, &[][..]).unwrap();
    }
    let mut h = header(tar::EntryType::Regular, 0o755, busybox.len() as u64);
    b.append_data(&mut h, "bin/busybox", busybox.as_slice())
        .unwrap();
    for applet in APPLETS {
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        b.append_link(&mut h, format!("bin/{applet}"), "busybox")
            .unwrap();
    }
    let passwd = b"root:x:0:0:root:/root:/bin/sh\n";
    let mut h = header(tar::EntryType::Regular, 0o644, passwd.len() as u64);
    b.append_data(&mut h, "etc/passwd", &passwd[..]).unwrap();
    let group = b"root:x:0:\n";
    let mut h = header(tar::EntryType::Regular, 0o644, group.len() as u64);
    b.append_data(&mut h, "etc/group", &group[..]).unwrap();
    b.into_inner().unwrap()
}

/// An OCI layout tarball holding the busybox image as `name` (e.g. `docker.io/library/bb:1`).
pub fn oci_tar(name: &str) -> Vec<u8> {
    let layer = crate::layers::gzip(&layer());
    let diff_id = digest_of(&self::layer());
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
        "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": digest_of(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": digest_of(&layer), "size": layer.len()}],
    }))
    .unwrap();
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": digest_of(&manifest), "size": manifest.len(),
                       "annotations": {"io.containerd.image.name": name,
                                       "org.opencontainers.image.ref.name": name.rsplit(':').next().unwrap_or("latest")}}],
    }))
    .unwrap();
    let mut files: Vec<(String, &[u8])> = vec![
        ("oci-layout".into(), br#"{"imageLayoutVersion":"1.0.0"}"#),
        ("index.json".into(), &index),
    ];
    for blob in [&config, &manifest, &layer] {
        files.push((format!("blobs/sha256/{}", hex(&digest_of(blob))), blob));
    }
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = header(tar::EntryType::Regular, 0o644, data.len() as u64);
        b.append_data(&mut h, path, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// Writes [`oci_tar`] to `path`.
pub fn write_oci_tar(path: &Path, name: &str) {
    std::fs::write(path, oci_tar(name)).unwrap();
}

/// Whether containers of this image can run here — root, runc, Debian's shim and busybox-static —
/// and whatever else the caller lists (`(present, what)`); reports what is missing through
/// `rcontainerd_pkg::prereq` (a failure in CI).
pub fn containers_can_run(extra: &[(bool, &str)]) -> bool {
    let runc = ["/usr/sbin/runc", "/usr/bin/runc"]
        .iter()
        .any(|p| Path::new(p).is_file());
    let needed = [
        (
            nix::unistd::geteuid().is_root(),
            "root (containers need it)",
        ),
        (runc, "runc"),
        (Path::new(SHIM).is_file(), SHIM),
        (
            Path::new(BUSYBOX).is_file(),
            "/bin/busybox (busybox-static)",
        ),
    ];
    let missing: Vec<&str> = needed
        .iter()
        .chain(extra)
        .filter_map(|(present, what)| (!present).then_some(*what))
        .collect();
    if !missing.is_empty() {
        rcontainerd_pkg::prereq::missing(missing.join(", "));
    }
    missing.is_empty()
}
