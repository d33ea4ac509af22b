//! Building test blobs: digests as containerd names them, tars of directories and files as a layer
//! or an archive holds them, gzip.

use std::io::Write as _;

use sha2::Digest as _;

/// `sha256:<hex>` of `data`.
pub fn digest_of(data: &[u8]) -> String {
    format!("sha256:{:x}", sha2::Sha256::digest(data))
}

/// The hex part of a `sha256:` digest.
pub fn hex(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap()
}

/// A tar of directories (`None`) and files, owned by root, dated 2023-11-14.
pub fn tar_of(members: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in members {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(1_700_000_000);
        header.set_uid(0);
        header.set_gid(0);
        match data {
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                builder.append_data(&mut header, name, &[][..]).unwrap();
            }
            Some(data) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o644);
                header.set_size(data.len() as u64);
                builder.append_data(&mut header, name, *data).unwrap();
            }
        }
    }
    builder.into_inner().unwrap()
}

/// `len` bytes gzip cannot shrink (xorshift from `seed`), so a layer is as big as its data.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// `data` gzipped (fast level).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// An OCI layout archive of image `name` whose layers are `layers` (tars, gzipped here), for
/// linux/amd64; also the chain ID of its top layer (the snapshot an unpack makes last).
pub fn oci_layout_of(name: &str, layers: &[Vec<u8>]) -> (Vec<u8>, String) {
    let gzipped: Vec<Vec<u8>> = layers.iter().map(|l| gzip(l)).collect();
    let diff_ids: Vec<String> = layers.iter().map(|l| digest_of(l)).collect();
    oci_layout_with(name, &gzipped, &diff_ids)
}

/// [`oci_layout_of`] with the gzipped layer blobs given as they are, and the diff IDs the
/// config claims for them (a test of a bad layer gives blobs that do not match).
pub fn oci_layout_with(name: &str, gzipped: &[Vec<u8>], diff_ids: &[String]) -> (Vec<u8>, String) {
    let mut chain = diff_ids[0].clone();
    for diff_id in &diff_ids[1..] {
        chain = digest_of(format!("{chain} {diff_id}").as_bytes());
    }
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    })
    .to_string()
    .into_bytes();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest_of(&config), "size": config.len()},
        "layers": gzipped.iter().map(|gz| serde_json::json!(
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest_of(gz), "size": gz.len()}
        )).collect::<Vec<_>>(),
    })
    .to_string()
    .into_bytes();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest_of(&manifest),
            "size": manifest.len(),
            "annotations": {"io.containerd.image.name": name},
            "platform": {"architecture": "amd64", "os": "linux"},
        }],
    })
    .to_string()
    .into_bytes();
    let blob = |data: &[u8]| format!("blobs/sha256/{}", hex(&digest_of(data)));
    let mut members: Vec<(String, Vec<u8>)> = vec![
        (
            "oci-layout".into(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ),
        ("index.json".into(), index),
        (blob(&config), config.clone()),
        (blob(&manifest), manifest.clone()),
    ];
    members.extend(gzipped.iter().map(|gz| (blob(gz), gz.clone())));
    let refs: Vec<(&str, Option<&[u8]>)> = members
        .iter()
        .map(|(n, d)| (n.as_str(), Some(d.as_slice())))
        .collect();
    (tar_of(&refs), chain)
}
