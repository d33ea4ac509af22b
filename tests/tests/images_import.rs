//! `ctr images import|export|mount|unmount` with both ctrs against the real daemon: an OCI
//! layout and a `docker save` archive of the same two-layer image (the second layer whites
//! out a file of the first) are imported, unpacked into snapshots named by chain IDs and
//! labelled for the collector exactly as containerd's ctr does it; images mount with the
//! whiteout respected and unmount without leftovers; exports are byte for byte containerd's
//! and import again; `--no-unpack` makes no snapshots; bad archives fail as containerd's do.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rcontainerd_api::client::namespaced;
use rcontainerd_api::services::content::content_client::ContentClient;
use rcontainerd_api::services::content::ListContentRequest;
use rcontainerd_api::services::leases::leases_client::LeasesClient;
use rcontainerd_api::services::leases::ListRequest;
use rcontainerd_api::services::snapshots::snapshots_client::SnapshotsClient;
use rcontainerd_api::services::snapshots::{ListSnapshotsRequest, StatSnapshotRequest};
use rcontainerd_tests::layers::{digest_of, gzip, hex, oci_layout_of, tar_of};
use rcontainerd_tests::{Ctr, Daemon};
use sha2::Digest as _;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const SNAPSHOTTER: &str = "overlayfs";

/// Root (mounting snapshots) and containerd's ctr (the reference) are needed.
fn prerequisites() -> bool {
    if !nix::unistd::geteuid().is_root() {
        rcontainerd_pkg::prereq::missing("root (unpacking and mounting snapshots needs it)");
        return false;
    }
    if !Path::new(rcontainerd_tests::binaries::DEBIAN_CTR).is_file() {
        rcontainerd_pkg::prereq::missing("containerd's ctr at /usr/bin/ctr");
        return false;
    }
    true
}

fn symlink_member(builder: &mut tar::Builder<Vec<u8>>, name: &str, target: &str) {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_mode(0o777);
    header.set_size(0);
    header.set_mtime(1_700_000_000);
    builder
        .append_link(&mut header, name, target)
        .expect("symlink member");
}

/// The test image, as an OCI layout and as a Docker archive.
struct TestImage {
    oci: Vec<u8>,
    docker: Vec<u8>,
    /// The OCI layout's index.json, which no image holds (it goes with the next collection).
    oci_index: String,
    config: String,
    manifest: String,
    gzip_layers: [String; 2],
    diff_ids: [String; 2],
    /// The chain IDs of the first layer and of both.
    chain: [String; 2],
    /// An OCI layout whose index offers the image for linux/amd64 and linux/arm64 (named
    /// `multi`), and the arm64 manifest's digest.
    multi: Vec<u8>,
    arm_manifest: String,
    /// That layout's index.json (no image holds it).
    multi_top: String,
}

fn test_image() -> TestImage {
    test_image_with(false)
}

/// The test image; with `swapped`, its config names the layers' diff IDs in the wrong order.
fn test_image_with(swapped: bool) -> TestImage {
    let layer1 = tar_of(&[
        ("etc", None),
        ("etc/hello", Some(b"hello\n")),
        ("etc/gone", Some(b"bye\n")),
    ]);
    let layer2 = tar_of(&[
        ("etc", None),
        ("etc/.wh.gone", Some(b"")),
        ("etc/new", Some(b"new\n")),
    ]);
    let (gz1, gz2) = (gzip(&layer1), gzip(&layer2));
    let diff_ids = [digest_of(&layer1), digest_of(&layer2)];
    let chain2 = digest_of(format!("{} {}", diff_ids[0], diff_ids[1]).as_bytes());
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/bin"]},
        "rootfs": {
            "type": "layers",
            "diff_ids": if swapped { [diff_ids[1].clone(), diff_ids[0].clone()] } else { diff_ids.clone() },
        },
    })
    .to_string()
    .into_bytes();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": digest_of(&config), "size": config.len()},
        "layers": [
            {"mediaType": OCI_GZIP, "digest": digest_of(&gz1), "size": gz1.len()},
            {"mediaType": OCI_GZIP, "digest": digest_of(&gz2), "size": gz2.len()},
        ],
    })
    .to_string()
    .into_bytes();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": OCI_MANIFEST,
            "digest": digest_of(&manifest),
            "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": "latest"},
            "platform": {"architecture": "amd64", "os": "linux"},
        }],
    })
    .to_string()
    .into_bytes();
    let blob = |data: &[u8]| format!("blobs/sha256/{}", hex(&digest_of(data)));
    let (b_config, b_manifest, b_gz1, b_gz2) =
        (blob(&config), blob(&manifest), blob(&gz1), blob(&gz2));
    let oci = tar_of(&[
        ("oci-layout", Some(br#"{"imageLayoutVersion":"1.0.0"}"#)),
        ("index.json", Some(&index)),
        ("blobs", None),
        ("blobs/sha256", None),
        (&b_config, Some(&config)),
        (&b_manifest, Some(&manifest)),
        (&b_gz1, Some(&gz1)),
        (&b_gz2, Some(&gz2)),
    ]);

    // `docker save`: plain layer tars, the config as <id>.json, manifest.json naming them; the
    // second layer through a symlink, as docker writes a layer it already wrote.
    let config_name = format!("{}.json", hex(&digest_of(&config)));
    let docker_manifest = serde_json::json!([{
        "Config": config_name,
        "RepoTags": ["example.com/test/image:v1"],
        "Layers": ["a/layer.tar", "c/layer.tar"],
    }])
    .to_string()
    .into_bytes();
    let plain = tar_of(&[
        ("a", None),
        ("a/layer.tar", Some(&layer1)),
        ("b", None),
        ("b/layer.tar", Some(&layer2)),
        (&config_name, Some(&config)),
        ("repositories", Some(b"{}")),
    ]);
    let mut builder = tar::Builder::new(Vec::new());
    {
        let mut archive = tar::Archive::new(&plain[..]);
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let header = entry.header().clone();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
            builder.append(&header, &data[..]).unwrap();
        }
    }
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_mode(0o755);
    header.set_size(0);
    builder.append_data(&mut header, "c", &[][..]).unwrap();
    symlink_member(&mut builder, "c/layer.tar", "../b/layer.tar");
    let mut header = tar::Header::new_gnu();
    header.set_mode(0o644);
    header.set_size(docker_manifest.len() as u64);
    builder
        .append_data(&mut header, "manifest.json", &docker_manifest[..])
        .unwrap();
    let docker = builder.into_inner().unwrap();

    // The same layers for arm64: a config and a manifest of its own, and an index of both.
    let mut arm_config: serde_json::Value = serde_json::from_slice(&config).unwrap();
    arm_config["architecture"] = "arm64".into();
    let arm_config = arm_config.to_string().into_bytes();
    let mut arm_manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    arm_manifest["config"]["digest"] = digest_of(&arm_config).into();
    arm_manifest["config"]["size"] = arm_config.len().into();
    let arm_manifest = arm_manifest.to_string().into_bytes();
    let entry = |manifest: &[u8], arch: &str| {
        serde_json::json!({
            "mediaType": OCI_MANIFEST,
            "digest": digest_of(manifest),
            "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": "multi"},
            "platform": {"architecture": arch, "os": "linux"},
        })
    };
    let multi_index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry(&arm_manifest, "arm64"), entry(&manifest, "amd64")],
    })
    .to_string()
    .into_bytes();
    let multi_nested = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": digest_of(&multi_index),
            "size": multi_index.len(),
            "annotations": {"org.opencontainers.image.ref.name": "multi"},
        }],
    })
    .to_string()
    .into_bytes();
    let (b_arm_config, b_arm_manifest, b_multi) =
        (blob(&arm_config), blob(&arm_manifest), blob(&multi_index));
    let multi = tar_of(&[
        ("oci-layout", Some(br#"{"imageLayoutVersion":"1.0.0"}"#)),
        ("index.json", Some(&multi_nested)),
        (&b_multi, Some(&multi_index)),
        (&b_config, Some(&config)),
        (&b_manifest, Some(&manifest)),
        (&b_arm_config, Some(&arm_config)),
        (&b_arm_manifest, Some(&arm_manifest)),
        (&b_gz1, Some(&gz1)),
        (&b_gz2, Some(&gz2)),
    ]);

    TestImage {
        multi,
        arm_manifest: digest_of(&arm_manifest),
        multi_top: digest_of(&multi_nested),
        oci,
        docker,
        oci_index: digest_of(&index),
        config: digest_of(&config),
        manifest: digest_of(&manifest),
        gzip_layers: [digest_of(&gz1), digest_of(&gz2)],
        chain: [diff_ids[0].clone(), chain2],
        diff_ids,
    }
}

fn write_file(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, data).unwrap();
    path
}

/// Labelled blobs of a namespace and their labels (unlabelled ones are left to the collector,
/// which may not have run yet).
async fn content_labels(
    daemon: &Daemon,
    ns: &str,
    except: &str,
) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut stream = ContentClient::new(daemon.channel())
        .list(namespaced(ListContentRequest { filters: vec![] }, ns))
        .await
        .unwrap()
        .into_inner();
    let mut out = BTreeMap::new();
    while let Some(response) = stream.message().await.unwrap() {
        for info in response.info {
            if !info.labels.is_empty() && info.digest != except {
                out.insert(info.digest, info.labels.into_iter().collect());
            }
        }
    }
    out
}

/// `(key, parent, kind, labels)` of every snapshot of a namespace.
async fn snapshots(
    daemon: &Daemon,
    ns: &str,
) -> Vec<(String, String, i32, BTreeMap<String, String>)> {
    let mut stream = SnapshotsClient::new(daemon.channel())
        .list(namespaced(
            ListSnapshotsRequest {
                snapshotter: SNAPSHOTTER.into(),
                filters: vec![],
            },
            ns,
        ))
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    while let Some(response) = stream.message().await.unwrap() {
        for info in response.info {
            out.push((
                info.name,
                info.parent,
                info.kind,
                info.labels.into_iter().collect(),
            ));
        }
    }
    out.sort();
    out
}

async fn lease_ids(daemon: &Daemon, ns: &str) -> Vec<String> {
    LeasesClient::new(daemon.channel())
        .list(namespaced(ListRequest { filters: vec![] }, ns))
        .await
        .unwrap()
        .into_inner()
        .leases
        .into_iter()
        .map(|l| l.id)
        .collect()
}

/// What an import left behind, to compare between the ctrs.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    stdout: String,
    images_ls: String,
    check: String,
    content: BTreeMap<String, BTreeMap<String, String>>,
    snapshots: Vec<(String, String, i32, BTreeMap<String, String>)>,
    leases: Vec<String>,
}

async fn import(daemon: &Daemon, ctr: Ctr, ns: &str, args: &[&str], except: &str) -> Outcome {
    let mut all = vec!["-n", ns, "images", "import"];
    all.extend_from_slice(args);
    let stdout = daemon.ctr(ctr, &all).ok().to_string();
    Outcome {
        stdout,
        images_ls: daemon
            .ctr(ctr, &["-n", ns, "images", "ls"])
            .ok()
            .to_string(),
        check: daemon
            .ctr(ctr, &["-n", ns, "images", "check"])
            .ok()
            .to_string(),
        content: content_labels(daemon, ns, except).await,
        snapshots: snapshots(daemon, ns).await,
        leases: lease_ids(daemon, ns).await,
    }
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn both_ctrs_import_an_oci_layout_and_a_docker_archive_alike() {
    if !prerequisites() {
        return;
    }
    let image = test_image();
    let mut outcomes = Vec::new();
    for ctr in Ctr::BOTH {
        // Each ctr gets a daemon of its own: what one unpacked must not help the other.
        let daemon = Daemon::start_default().await;
        let oci = write_file(daemon.dir(), "oci.tar", &image.oci);
        let docker = write_file(daemon.dir(), "docker.tar", &image.docker);
        let from_oci = import(
            &daemon,
            ctr,
            "oci",
            &["--base-name", "example.com/oci", oci.to_str().unwrap()],
            &image.oci_index,
        )
        .await;
        let from_docker = import(
            &daemon,
            ctr,
            "docker",
            &[
                "--digests",
                "--index-name",
                "example.com/index:1",
                docker.to_str().unwrap(),
            ],
            "",
        )
        .await;
        outcomes.push((ctr, from_oci, from_docker));
    }
    let (_, ours_oci, ours_docker) = &outcomes[0];
    let (_, theirs_oci, theirs_docker) = &outcomes[1];
    assert_eq!(ours_oci, theirs_oci, "OCI layout: ours, then containerd's");
    assert_eq!(
        ours_docker, theirs_docker,
        "Docker archive: ours, then containerd's"
    );

    // What both did, spelled out.
    assert_eq!(
        ours_oci.stdout,
        format!(
            "unpacking example.com/oci:latest ({})...done\n",
            image.manifest
        )
    );
    assert!(
        ours_oci
            .images_ls
            .lines()
            .nth(1)
            .is_some_and(|row| row.starts_with("example.com/oci:latest ")
                && row.contains(&image.manifest)
                && row.contains("linux/amd64")),
        "{}",
        ours_oci.images_ls
    );
    let check_row = ours_oci
        .check
        .lines()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    assert!(
        check_row.contains("complete (3/3)") && check_row.trim_end().ends_with("true"),
        "{}",
        ours_oci.check
    );
    let [gz1, gz2] = &image.gzip_layers;
    let expected = BTreeMap::from([
        (
            image.manifest.clone(),
            labels(&[
                ("containerd.io/gc.ref.content.config", &image.config),
                ("containerd.io/gc.ref.content.l.0", gz1),
                ("containerd.io/gc.ref.content.l.1", gz2),
            ]),
        ),
        (
            image.config.clone(),
            labels(&[("containerd.io/gc.ref.snapshot.overlayfs", &image.chain[1])]),
        ),
        (
            gz1.clone(),
            labels(&[("containerd.io/uncompressed", &image.diff_ids[0])]),
        ),
        (
            gz2.clone(),
            labels(&[("containerd.io/uncompressed", &image.diff_ids[1])]),
        ),
    ]);
    assert_eq!(ours_oci.content, expected);
    let committed = rcontainerd_api::services::snapshots::Kind::Committed as i32;
    assert_eq!(
        ours_oci.snapshots,
        vec![
            (
                image.chain[0].clone(),
                String::new(),
                committed,
                BTreeMap::new()
            ),
            (
                image.chain[1].clone(),
                image.chain[0].clone(),
                committed,
                BTreeMap::new()
            ),
        ]
    );
    assert!(ours_oci.leases.is_empty(), "{:?}", ours_oci.leases);

    // The Docker archive: a Docker manifest made from it, named by the tag, by digest, and
    // the index by --index-name; its layers are the plain tars (uncompressed = themselves).
    let lines: Vec<&str> = ours_docker.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", ours_docker.stdout);
    assert!(lines[0].starts_with("unpacking example.com/index:1 (sha256:"));
    assert!(lines[1].starts_with("unpacking example.com/test/image:v1 (sha256:"));
    assert!(lines[2].starts_with("unpacking import-"), "{}", lines[2]);
    assert!(lines.iter().all(|l| l.ends_with(")...done")));
    let index_labels = ours_docker
        .content
        .values()
        .filter(|l| l.contains_key("containerd.io/gc.ref.content.m.0"))
        .count();
    assert_eq!(index_labels, 1, "{:?}", ours_docker.content);
    for (i, diff_id) in image.diff_ids.iter().enumerate() {
        assert_eq!(
            ours_docker.content[diff_id]["containerd.io/uncompressed"], *diff_id,
            "layer {i}"
        );
    }
    assert_eq!(
        ours_docker
            .snapshots
            .iter()
            .map(|s| &s.0)
            .collect::<Vec<_>>(),
        [&image.chain[0], &image.chain[1]]
    );
}

#[tokio::test]
async fn an_image_mounts_with_its_whiteouts_and_unmounts_without_leftovers() {
    if !prerequisites() {
        return;
    }
    let image = test_image();
    let daemon = Daemon::start_default().await;
    let oci = write_file(daemon.dir(), "oci.tar", &image.oci);
    for ctr in Ctr::BOTH {
        let ns = format!("mount-{ctr:?}").to_lowercase();
        let ns = ns.as_str();
        daemon
            .ctr(
                ctr,
                &[
                    "-n",
                    ns,
                    "images",
                    "import",
                    "--no-unpack",
                    "--base-name",
                    "example.com/m",
                    oci.to_str().unwrap(),
                ],
            )
            .ok();
        for rw in [false, true] {
            let target = daemon.dir().join(format!("{ns}-rw-{rw}"));
            std::fs::create_dir_all(&target).unwrap();
            let target_text = target.to_str().unwrap();
            let mut args = vec!["-n", ns, "images", "mount"];
            if rw {
                args.push("--rw");
            }
            args.extend(["example.com/m:latest", target_text]);
            let out = daemon.ctr(ctr, &args);
            assert_eq!(
                out.ok(),
                format!("{}\n{target_text}\n", image.chain[1]),
                "{ctr:?}"
            );
            // The lease named after the target holds the snapshot keyed by it.
            let leases = lease_ids(&daemon, ns).await;
            assert_eq!(leases, [target_text], "{ctr:?}");
            let stat = SnapshotsClient::new(daemon.channel())
                .stat(namespaced(
                    StatSnapshotRequest {
                        snapshotter: SNAPSHOTTER.into(),
                        key: target_text.into(),
                    },
                    ns,
                ))
                .await
                .unwrap()
                .into_inner()
                .info
                .unwrap();
            assert_eq!(stat.parent, image.chain[1]);
            // Both layers, the second's whiteout applied.
            assert_eq!(
                std::fs::read_to_string(target.join("etc/hello")).unwrap(),
                "hello\n"
            );
            assert_eq!(
                std::fs::read_to_string(target.join("etc/new")).unwrap(),
                "new\n"
            );
            assert!(
                !target.join("etc/gone").exists(),
                "{ctr:?}: the whiteout was not respected"
            );
            let wrote = std::fs::write(target.join("etc/written"), b"x");
            assert_eq!(wrote.is_ok(), rw, "{ctr:?} rw={rw}: {wrote:?}");

            let out = daemon.ctr(ctr, &["-n", ns, "images", "unmount", "--rm", target_text]);
            assert_eq!(out.ok(), format!("{target_text}\n"), "{ctr:?}");
            let mounted = rcontainerd_mount::mounts_under(&target).unwrap();
            assert!(mounted.is_empty(), "{ctr:?}: still mounted: {mounted:?}");
            assert!(!target.join("etc").exists());
            assert!(lease_ids(&daemon, ns).await.is_empty(), "{ctr:?}");
            let keys: Vec<String> = snapshots(&daemon, ns)
                .await
                .into_iter()
                .map(|s| s.0)
                .collect();
            assert_eq!(keys, image.chain.to_vec(), "{ctr:?}: the view is removed");
        }
        // Unmounting what is not mounted succeeds; without arguments is an error.
        let target = daemon.dir().join(format!("{ns}-rw-false"));
        let out = daemon.ctr(
            ctr,
            &["-n", ns, "images", "unmount", target.to_str().unwrap()],
        );
        out.ok();
        let out = daemon.ctr(ctr, &["-n", ns, "images", "unmount"]);
        assert!(
            out.failed()
                .contains("please provide a target path to unmount from"),
            "{ctr:?}"
        );
    }
}

#[tokio::test]
async fn exports_are_containerds_bytes_and_import_again() {
    if !prerequisites() {
        return;
    }
    let image = test_image();
    let daemon = Daemon::start_default().await;
    let oci = write_file(daemon.dir(), "oci.tar", &image.oci);
    let docker = write_file(daemon.dir(), "docker.tar", &image.docker);
    for (ns, archive, extra) in [
        ("src-oci", &oci, vec!["--base-name", "example.com/oci"]),
        (
            "src-docker",
            &docker,
            vec!["--index-name", "example.com/idx"],
        ),
    ] {
        let mut args = vec!["-n", ns, "images", "import", "--no-unpack"];
        args.extend(extra);
        args.push(archive.to_str().unwrap());
        daemon.ctr(Ctr::Ours, &args).ok();
    }
    for (ns, names) in [
        ("src-oci", vec!["example.com/oci:latest"]),
        (
            "src-docker",
            vec!["example.com/idx", "example.com/test/image:v1"],
        ),
    ] {
        let mut exported = Vec::new();
        for ctr in Ctr::BOTH {
            let out = daemon.dir().join(format!("{ns}-{ctr:?}.tar"));
            let mut args = vec!["-n", ns, "images", "export", out.to_str().unwrap()];
            args.extend(names.iter().copied());
            daemon.ctr(ctr, &args).ok();
            exported.push(std::fs::read(&out).unwrap());
        }
        assert!(
            exported[0] == exported[1],
            "{ns}: our export differs from containerd's"
        );
        let members: Vec<String> = tar::Archive::new(&exported[0][..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert!(members.contains(&"index.json".to_string()), "{members:?}");
        assert!(members.contains(&"manifest.json".to_string()));
        assert!(members.contains(&format!("blobs/sha256/{}", hex(&image.config))));

        // Into a fresh namespace with each ctr: the same images, with the same digests.
        let original = daemon
            .ctr(Ctr::Ours, &["-n", ns, "images", "ls"])
            .ok()
            .to_string();
        let archive = daemon.dir().join(format!("{ns}-Ours.tar"));
        for ctr in Ctr::BOTH {
            let fresh = format!("{ns}-again-{ctr:?}").to_lowercase();
            daemon
                .ctr(
                    ctr,
                    &["-n", &fresh, "images", "import", archive.to_str().unwrap()],
                )
                .ok();
            let again = daemon
                .ctr(Ctr::Ours, &["-n", &fresh, "images", "ls"])
                .ok()
                .to_string();
            assert_eq!(again, original, "{ns} re-imported by {ctr:?}");
        }
    }
}

#[tokio::test]
async fn no_unpack_makes_no_snapshots() {
    if !prerequisites() {
        return;
    }
    let image = test_image();
    let daemon = Daemon::start_default().await;
    let oci = write_file(daemon.dir(), "oci.tar", &image.oci);
    let mut outcomes = Vec::new();
    for ctr in Ctr::BOTH {
        let ns = format!("nounpack-{ctr:?}").to_lowercase();
        let outcome = import(
            &daemon,
            ctr,
            &ns,
            &[
                "--no-unpack",
                "--base-name",
                "example.com/n",
                oci.to_str().unwrap(),
            ],
            &image.oci_index,
        )
        .await;
        assert_eq!(outcome.stdout, "", "{ctr:?}");
        assert!(
            outcome.snapshots.is_empty(),
            "{ctr:?}: {:?}",
            outcome.snapshots
        );
        assert!(
            outcome
                .check
                .lines()
                .nth(1)
                .unwrap_or_default()
                .trim_end()
                .ends_with("false"),
            "{ctr:?}: {}",
            outcome.check
        );
        assert_eq!(
            outcome.content.keys().collect::<Vec<_>>(),
            [&image.manifest],
            "{ctr:?}: only the manifest is labelled (with its children)"
        );
        outcomes.push(outcome);
    }
    assert_eq!(outcomes[0], outcomes[1], "ours, then containerd's");
}

#[tokio::test]
async fn bad_archives_fail_as_with_containerds_ctr() {
    if !prerequisites() {
        return;
    }
    let daemon = Daemon::start_default().await;
    let missing = daemon.dir().join("missing.tar");
    let garbage = write_file(
        daemon.dir(),
        "garbage.tar",
        &b"this is not a tar archive\n".repeat(40),
    );
    let empty = write_file(daemon.dir(), "empty.tar", b"");
    let cases = [
        (
            missing.to_str().unwrap().to_string(),
            format!(
                "ctr: open {}: no such file or directory\n",
                missing.display()
            ),
        ),
        (
            garbage.to_str().unwrap().to_string(),
            "ctr: archive/tar: invalid tar header\n".to_string(),
        ),
        (
            empty.to_str().unwrap().to_string(),
            "ctr: unrecognized image format\n".to_string(),
        ),
    ];
    for (path, message) in &cases {
        for ctr in Ctr::BOTH {
            let out = daemon.ctr(ctr, &["-n", "bad", "images", "import", path]);
            assert_eq!(out.failed(), message, "{ctr:?} importing {path}");
            assert_eq!(out.status.code(), Some(1), "{ctr:?}");
            assert_eq!(out.stdout, "", "{ctr:?}");
        }
    }
    assert!(lease_ids(&daemon, "bad").await.is_empty());

    // The archive cut anywhere (in a header, in a member's data, in its padding, in the end
    // blocks), or followed by a stray block: the outcome is containerd's ctr's, word for word.
    let image = test_image();
    let mut cuts: Vec<Vec<u8>> = (1..image.oci.len() / 256)
        .map(|i| image.oci[..i * 256 + 40].to_vec())
        .collect();
    cuts.extend((1..image.oci.len() / 512).map(|i| image.oci[..i * 512].to_vec()));
    let mut stray = image.oci[..image.oci.len() - 1024].to_vec();
    stray.extend_from_slice(&[0; 512]);
    stray.extend_from_slice(&[b'x'; 512]);
    cuts.push(stray);
    for (i, cut) in cuts.iter().enumerate() {
        let path = write_file(daemon.dir(), "cut.tar", cut);
        let mut outcomes = Vec::new();
        for ctr in Ctr::BOTH {
            let ns = format!("cut-{i}-{ctr:?}").to_lowercase();
            let out = daemon.ctr(
                ctr,
                &[
                    "-n",
                    &ns,
                    "images",
                    "import",
                    "--no-unpack",
                    path.to_str().unwrap(),
                ],
            );
            outcomes.push((out.status.code(), out.stdout.clone(), out.stderr.clone()));
        }
        assert_eq!(
            outcomes[0],
            outcomes[1],
            "the archive cut at {} bytes: ours, then containerd's",
            cut.len()
        );
    }

    // A layer whose content is not the diff ID its config names: the import stands, the
    // unpack fails and removes its extraction snapshot.
    let swapped = test_image_with(true);
    let archive = write_file(daemon.dir(), "swapped.tar", &swapped.oci);
    for ctr in Ctr::BOTH {
        let ns = format!("swapped-{ctr:?}").to_lowercase();
        let out = daemon.ctr(
            ctr,
            &[
                "-n",
                &ns,
                "images",
                "import",
                "--base-name",
                "example.com/s",
                archive.to_str().unwrap(),
            ],
        );
        let stderr = out.failed();
        assert_eq!(
            stderr.lines().last(),
            Some(
                format!(
                    "ctr: wrong diff id calculated on extraction {:?}",
                    swapped.diff_ids[0]
                )
                .as_str()
            ),
            "{ctr:?}: {stderr}"
        );
        assert!(
            stderr.contains("level=info msg=\"apply failure, attempting cleanup\""),
            "{ctr:?}: {stderr}"
        );
        assert_eq!(
            out.stdout,
            format!("unpacking example.com/s:latest ({})...", swapped.manifest),
            "{ctr:?}"
        );
        assert!(snapshots(&daemon, &ns).await.is_empty(), "{ctr:?}");
        assert!(lease_ids(&daemon, &ns).await.is_empty(), "{ctr:?}");
    }
    for ctr in Ctr::BOTH {
        let out = daemon.ctr(ctr, &["images", "export", "x.tar"]);
        assert_eq!(
            out.failed(),
            "ctr: please provide both an output filename and an image reference to export\n",
            "{ctr:?}"
        );
        let out = daemon.ctr(ctr, &["images", "mount", "nosuch:latest"]);
        assert_eq!(
            out.failed(),
            "ctr: please provide a target path to mount to\n",
            "{ctr:?}"
        );
    }
}

/// `ctr --address <socket> <args>` with stdin read from `input`.
fn ctr_with_stdin(daemon: &Daemon, ctr: Ctr, args: &[&str], input: &Path) -> std::process::Output {
    std::process::Command::new(ctr.path())
        .arg("--address")
        .arg(daemon.socket())
        .args(args)
        .env_remove("CONTAINERD_ADDRESS")
        .env_remove("CONTAINERD_NAMESPACE")
        .env_remove("CONTAINERD_SNAPSHOTTER")
        .stdin(std::fs::File::open(input).unwrap())
        .output()
        .unwrap()
}

#[tokio::test]
async fn an_archive_on_stdin_imports_and_compress_blobs_gzips_docker_layers() {
    if !prerequisites() {
        return;
    }
    let image = test_image();
    let daemon = Daemon::start_default().await;
    let docker = write_file(daemon.dir(), "docker.tar", &image.docker);
    let mut listed = Vec::new();
    for ctr in Ctr::BOTH {
        let ns = format!("stdin-{ctr:?}").to_lowercase();
        let out = ctr_with_stdin(
            &daemon,
            ctr,
            &["-n", &ns, "images", "import", "--no-unpack", "-"],
            &docker,
        );
        assert!(
            out.status.success(),
            "{ctr:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        listed.push(
            daemon
                .ctr(ctr, &["-n", &ns, "images", "ls"])
                .ok()
                .to_string(),
        );

        // --compress-blobs: gzip layers (Go's and flate2's gzip bytes differ, so the digests
        // are not compared), each labelled with the plain layer it holds.
        let ns = format!("compress-{ctr:?}").to_lowercase();
        daemon
            .ctr(
                ctr,
                &[
                    "-n",
                    &ns,
                    "images",
                    "import",
                    "--compress-blobs",
                    docker.to_str().unwrap(),
                ],
            )
            .ok();
        let content = content_labels(&daemon, &ns, "").await;
        let manifest_labels = content
            .values()
            .find(|l| l.contains_key("containerd.io/gc.ref.content.l.0"))
            .unwrap_or_else(|| panic!("{ctr:?}: no manifest labels in {content:?}"));
        for (i, diff_id) in image.diff_ids.iter().enumerate() {
            let layer = &manifest_labels[&format!("containerd.io/gc.ref.content.l.{i}")];
            assert_ne!(layer, diff_id, "{ctr:?}: layer {i} is not compressed");
            assert_eq!(
                content[layer]["containerd.io/uncompressed"], *diff_id,
                "{ctr:?}: layer {i}"
            );
        }
        let check = daemon
            .ctr(ctr, &["-n", &ns, "images", "check"])
            .ok()
            .to_string();
        assert!(
            check.contains("complete (3/3)") && check.trim_end().ends_with("true"),
            "{ctr:?}: {check}"
        );
    }
    assert_eq!(listed[0], listed[1], "ours, then containerd's");
    assert!(
        listed[0].contains("example.com/test/image:v1"),
        "{}",
        listed[0]
    );
}

#[tokio::test]
async fn a_multi_platform_index_is_labelled_for_this_platform_or_all() {
    if !prerequisites() {
        return;
    }
    let image = test_image();
    let daemon = Daemon::start_default().await;
    let multi = write_file(daemon.dir(), "multi.tar", &image.multi);
    let mut outcomes = Vec::new();
    for ctr in Ctr::BOTH {
        for all in [false, true] {
            let ns = format!("multi-{ctr:?}-{all}").to_lowercase();
            let mut args = vec!["--base-name", "example.com/multi"];
            if all {
                args.push("--all-platforms");
            }
            args.push(multi.to_str().unwrap());
            let outcome = import(&daemon, ctr, &ns, &args, &image.multi_top).await;
            outcomes.push((ctr, all, outcome));
        }
    }
    for i in 0..2 {
        let (_, all, ours) = &outcomes[i];
        let (_, _, theirs) = &outcomes[i + 2];
        assert_eq!(
            ours, theirs,
            "--all-platforms={all}: ours, then containerd's"
        );
    }
    // The nested index names the image; its manifests are labelled m.0 (and m.1 for all).
    let (_, _, this_platform) = &outcomes[0];
    let (_, _, every_platform) = &outcomes[1];
    let index_of = |outcome: &Outcome| {
        outcome
            .content
            .values()
            .find(|l| l.contains_key("containerd.io/gc.ref.content.m.0"))
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(
        index_of(this_platform),
        labels(&[("containerd.io/gc.ref.content.m.0", &image.manifest)])
    );
    assert_eq!(
        index_of(every_platform),
        labels(&[
            ("containerd.io/gc.ref.content.m.0", &image.arm_manifest),
            ("containerd.io/gc.ref.content.m.1", &image.manifest),
        ])
    );
    assert!(!this_platform.content.contains_key(&image.arm_manifest));
    assert!(every_platform.content.contains_key(&image.arm_manifest));
    // Unpacked for this machine only, either way.
    for outcome in [this_platform, every_platform] {
        assert_eq!(
            outcome.snapshots.iter().map(|s| &s.0).collect::<Vec<_>>(),
            [&image.chain[0], &image.chain[1]]
        );
        assert!(
            outcome
                .stdout
                .starts_with("unpacking example.com/multi:multi (sha256:"),
            "{}",
            outcome.stdout
        );
    }
}

#[test]
fn usage_errors_come_before_dialling_as_with_containerds_ctr() {
    if !Path::new(rcontainerd_tests::binaries::DEBIAN_CTR).is_file() {
        rcontainerd_pkg::prereq::missing("containerd's ctr at /usr/bin/ctr");
        return;
    }
    let cases: [(&[&str], &str); 8] = [
        (
            &["images", "import", "--platform", "nonsense", "x.tar"],
            "ctr: \"nonsense\": unknown operating system or architecture: invalid argument\n",
        ),
        (
            &["images", "import", "--skip-digest-for-named", "x.tar"],
            "ctr: --skip-digest-for-named must be specified with --digests option\n",
        ),
        (
            &["images", "export", "x.tar"],
            "ctr: please provide both an output filename and an image reference to export\n",
        ),
        (
            &["images", "export", "--platform", "bad", "x.tar", "img"],
            "ctr: invalid platform \"bad\": \"bad\": unknown operating system or architecture: invalid argument\n",
        ),
        (
            &["images", "mount", "img"],
            "ctr: please provide a target path to mount to\n",
        ),
        (
            &["images", "unmount"],
            "ctr: please provide a target path to unmount from\n",
        ),
        // The registry flags both take (and do not use).
        (
            &[
                "images",
                "mount",
                "-k",
                "--plain-http",
                "-u",
                "a:b",
                "--hosts-dir",
                "/h",
                "--http-trace",
                "img",
            ],
            "ctr: please provide a target path to mount to\n",
        ),
        (
            &["images", "unmount", "--rm", "--tlscacert", "/ca", "--refresh", "t"],
            "ctr: please provide a target path to unmount from\n",
        ),
    ];
    for (args, message) in cases {
        for ctr in Ctr::BOTH {
            // No daemon listens there: these fail before dialling.
            let mut all = vec![
                "--address",
                "/nonexistent/ctr.sock",
                "--connect-timeout",
                "1s",
            ];
            all.extend_from_slice(args);
            let out = ctr.run_with_env(&all, &[]);
            assert_eq!(out.failed(), message, "{ctr:?} {args:?}");
            assert_eq!(out.status.code(), Some(1), "{ctr:?} {args:?}");
        }
    }
}

#[tokio::test]
async fn export_flags_give_containerds_bytes() {
    if !prerequisites() {
        return;
    }
    let image = test_image();
    let daemon = Daemon::start_default().await;
    let multi = write_file(daemon.dir(), "multi.tar", &image.multi);
    daemon
        .ctr(
            Ctr::Ours,
            &[
                "-n",
                "flags",
                "images",
                "import",
                "--no-unpack",
                "--all-platforms",
                "--index-name",
                "example.com/all:1",
                "--base-name",
                "example.com/multi",
                multi.to_str().unwrap(),
            ],
        )
        .ok();
    let flag_sets: [&[&str]; 6] = [
        &[],
        &["--skip-manifest-json"],
        &["--all-platforms"],
        &["--platform", "linux/arm64"],
        &["--platform", "linux/s390x"],
        &["--skip-manifest-json", "--platform", "linux/s390x"],
    ];
    // The multi-platform index alone, and with the index above it (whose one manifest is an
    // index, which containerd's ctr fails to write into manifest.json).
    let image_sets: [&[&str]; 2] = [
        &["example.com/multi:multi"],
        &["example.com/all:1", "example.com/multi:multi"],
    ];
    let mut succeeded = 0;
    for (images, flags) in image_sets
        .iter()
        .flat_map(|images| flag_sets.iter().map(move |flags| (*images, *flags)))
    {
        let mut results = Vec::new();
        for ctr in Ctr::BOTH {
            let out = daemon.dir().join(format!("flags-{ctr:?}.tar"));
            let _ = std::fs::remove_file(&out);
            let mut args = vec!["-n", "flags", "images", "export"];
            args.extend_from_slice(flags);
            args.push(out.to_str().unwrap());
            args.extend_from_slice(images);
            let run = daemon.ctr(ctr, &args);
            results.push((
                run.status.code(),
                run.stderr.clone(),
                std::fs::read(&out).unwrap_or_default(),
            ));
        }
        if results[0].0 == Some(0) {
            succeeded += 1;
        }
        assert!(
            results[0] == results[1],
            "{images:?} {flags:?}: ours {:?} {:?} ({} bytes), containerd's {:?} {:?} ({} bytes)",
            results[0].0,
            results[0].1,
            results[0].2.len(),
            results[1].0,
            results[1].1,
            results[1].2.len()
        );
    }
    // The multi-platform index exports with every flag set but the platform it lacks (5); with
    // the index above it, only without manifest.json (2).
    assert_eq!(succeeded, 7);
}

#[tokio::test]
async fn unpacking_uses_the_namespaces_default_snapshotter() {
    if !prerequisites() {
        return;
    }
    let image = test_image();
    let daemon = Daemon::start_default().await;
    let oci = write_file(daemon.dir(), "oci.tar", &image.oci);
    for ctr in Ctr::BOTH {
        let ns = format!("native-{ctr:?}").to_lowercase();
        daemon
            .ctr(
                ctr,
                &[
                    "namespaces",
                    "create",
                    &ns,
                    "containerd.io/defaults/snapshotter=native",
                ],
            )
            .ok();
        daemon
            .ctr(
                ctr,
                &[
                    "-n",
                    &ns,
                    "images",
                    "import",
                    "--base-name",
                    "x/y",
                    oci.to_str().unwrap(),
                ],
            )
            .ok();
        assert!(
            snapshots(&daemon, &ns).await.is_empty(),
            "{ctr:?}: not in overlayfs"
        );
        let native = daemon
            .ctr(
                ctr,
                &["-n", &ns, "snapshots", "--snapshotter", "native", "ls"],
            )
            .ok()
            .to_string();
        assert!(
            native.contains(&image.chain[1]) && native.contains(&image.chain[0]),
            "{ctr:?}: {native}"
        );
        let content = content_labels(&daemon, &ns, &image.oci_index).await;
        assert_eq!(
            content[&image.config],
            labels(&[("containerd.io/gc.ref.snapshot.native", &image.chain[1])]),
            "{ctr:?}"
        );
    }
}

#[tokio::test]
async fn concurrent_imports_of_one_archive_both_succeed() {
    if !prerequisites() {
        return;
    }
    let image = test_image();
    let daemon = Daemon::start_default().await;
    let oci = write_file(daemon.dir(), "oci.tar", &image.oci);
    // Each round: two imports of the same archive into one namespace at once, ours with ours
    // and ours with containerd's. They meet on the same ingest refs (`tar-<member>`), which
    // one waits for while the other holds them, and on the same chain IDs, where the unpack
    // that commits second drops its extraction snapshot.
    let rounds = [
        (Ctr::Ours, Ctr::Ours),
        (Ctr::Ours, Ctr::Debian),
        (Ctr::Ours, Ctr::Ours),
        (Ctr::Debian, Ctr::Ours),
    ];
    for (round, (first, second)) in rounds.into_iter().enumerate() {
        let ns = format!("race-{round}");
        let args = [
            "-n",
            &ns,
            "images",
            "import",
            "--base-name",
            "example.com/race",
            oci.to_str().unwrap(),
        ];
        let a = daemon.spawn_ctr(first, &args);
        let b = daemon.spawn_ctr(second, &args);
        for running in [a, b] {
            let out = running.wait(std::time::Duration::from_secs(60));
            let expected = format!(
                "unpacking example.com/race:latest ({})...done\n",
                image.manifest
            );
            assert_eq!(
                out.ok(),
                expected,
                "round {round}: {:?}, stderr {}",
                out.which,
                out.stderr
            );
        }
        let keys: Vec<String> = snapshots(&daemon, &ns)
            .await
            .into_iter()
            .map(|s| s.0)
            .collect();
        assert_eq!(keys, image.chain.to_vec(), "round {round}");
        assert!(lease_ids(&daemon, &ns).await.is_empty(), "round {round}");
    }
}

#[tokio::test]
async fn export_to_stdout_is_the_archive_and_a_closed_pipe_ends_it_by_sigpipe() {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    if !prerequisites() {
        return;
    }
    let daemon = Daemon::start_default().await;
    // An image larger than a pipe holds: 2 MiB that do not compress.
    let mut noise = Vec::with_capacity(2 << 20);
    let mut block = digest_of(b"seed").into_bytes();
    while noise.len() < 2 << 20 {
        block = sha2::Sha256::digest(&block).to_vec();
        noise.extend_from_slice(&block);
    }
    let layer = gzip(&tar_of(&[("noise", Some(&noise))]));
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [digest_of(&tar_of(&[("noise", Some(&noise))]))]},
    })
    .to_string()
    .into_bytes();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": digest_of(&config), "size": config.len()},
        "layers": [{"mediaType": OCI_GZIP, "digest": digest_of(&layer), "size": layer.len()}],
    })
    .to_string()
    .into_bytes();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": OCI_MANIFEST,
            "digest": digest_of(&manifest),
            "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": "latest"},
        }],
    })
    .to_string()
    .into_bytes();
    let blob = |data: &[u8]| format!("blobs/sha256/{}", hex(&digest_of(data)));
    let (b_config, b_manifest, b_layer) = (blob(&config), blob(&manifest), blob(&layer));
    let archive = tar_of(&[
        ("oci-layout", Some(br#"{"imageLayoutVersion":"1.0.0"}"#)),
        ("index.json", Some(&index)),
        (&b_config, Some(&config)),
        (&b_manifest, Some(&manifest)),
        (&b_layer, Some(&layer)),
    ]);
    let oci = write_file(daemon.dir(), "oci.tar", &archive);
    let import = [
        "-n",
        "out",
        "images",
        "import",
        "--no-unpack",
        "--base-name",
        "example.com/out",
        oci.to_str().unwrap(),
    ];
    daemon.ctr(Ctr::Ours, &import).ok();
    let file = daemon.dir().join("out.tar");
    daemon
        .ctr(
            Ctr::Ours,
            &[
                "-n",
                "out",
                "images",
                "export",
                file.to_str().unwrap(),
                "example.com/out:latest",
            ],
        )
        .ok();
    let expected = std::fs::read(&file).unwrap();
    assert!(expected.len() > 2 << 20, "{} bytes", expected.len());
    let command = |ctr: Ctr| {
        let mut command = std::process::Command::new(ctr.path());
        command
            .arg("--address")
            .arg(daemon.socket())
            .args([
                "-n",
                "out",
                "images",
                "export",
                "-",
                "example.com/out:latest",
            ])
            .env_remove("CONTAINERD_ADDRESS")
            .env_remove("CONTAINERD_NAMESPACE")
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        command
    };
    for ctr in Ctr::BOTH {
        let out = command(ctr).output().unwrap();
        assert!(
            out.status.success(),
            "{ctr:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout == expected, "{ctr:?}: stdout is not the archive");

        // The reader takes one block and goes away.
        let mut child = command(ctr)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut block = [0u8; 512];
        stdout.read_exact(&mut block).unwrap();
        drop(stdout);
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(13), "{ctr:?}: {status:?}");
    }
}

#[tokio::test]
async fn a_mount_that_fails_leaves_no_lease_or_snapshot() {
    if !prerequisites() {
        return;
    }
    let image = test_image();
    let daemon = Daemon::start_default().await;
    let oci = write_file(daemon.dir(), "oci.tar", &image.oci);
    let not_a_dir = write_file(daemon.dir(), "a-file", b"");
    for ctr in Ctr::BOTH {
        let ns = format!("badmount-{ctr:?}").to_lowercase();
        daemon
            .ctr(
                ctr,
                &[
                    "-n",
                    &ns,
                    "images",
                    "import",
                    "--base-name",
                    "x/y",
                    oci.to_str().unwrap(),
                ],
            )
            .ok();
        let missing = daemon.dir().join("missing");
        for (target, reason) in [
            (missing.to_str().unwrap(), "no such file or directory"),
            (not_a_dir.to_str().unwrap(), "not a directory"),
        ] {
            let out = daemon.ctr(ctr, &["-n", &ns, "images", "mount", "x/y:latest", target]);
            assert_eq!(out.failed(), format!("ctr: {reason}\n"), "{ctr:?}");
            assert_eq!(out.stdout, format!("{}\n", image.chain[1]), "{ctr:?}");
            assert!(lease_ids(&daemon, &ns).await.is_empty(), "{ctr:?}");
            let keys: Vec<String> = snapshots(&daemon, &ns)
                .await
                .into_iter()
                .map(|s| s.0)
                .collect();
            assert_eq!(keys, image.chain.to_vec(), "{ctr:?}");
        }
    }
}

/// `archive` with its member `name` replaced by `data` (other members kept, in order).
fn replace_member(archive: &[u8], name: &str, data: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in tar::Archive::new(archive).entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().display().to_string();
        let mut header = entry.header().clone();
        let mut content = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut content).unwrap();
        if path.trim_end_matches('/') == name {
            header.set_size(data.len() as u64);
            builder.append_data(&mut header, name, data).unwrap();
        } else {
            builder.append(&header, &content[..]).unwrap();
        }
    }
    builder.into_inner().unwrap()
}

fn member(archive: &[u8], name: &str) -> Vec<u8> {
    for entry in tar::Archive::new(archive).entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().display().to_string() == name {
            let mut content = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut content).unwrap();
            return content;
        }
    }
    panic!("no member {name}");
}

#[tokio::test]
async fn names_digests_and_gzip_docker_layers_as_containerds_ctr() {
    if !prerequisites() {
        return;
    }
    let image = test_image();
    let manifest_size = member(
        &image.oci,
        &format!("blobs/sha256/{}", hex(&image.manifest)),
    )
    .len();
    // One manifest under four names: a full name with the base, one with another base, a tag
    // alone, and none at all.
    let entry = |annotations: serde_json::Value| {
        serde_json::json!({
            "mediaType": OCI_MANIFEST,
            "digest": image.manifest,
            "size": manifest_size,
            "annotations": annotations,
            "platform": {"architecture": "amd64", "os": "linux"},
        })
    };
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [
            entry(serde_json::json!({"org.opencontainers.image.ref.name": "example.com/keep:1"})),
            entry(serde_json::json!({"org.opencontainers.image.ref.name": "other.com/drop:1"})),
            entry(serde_json::json!({"org.opencontainers.image.ref.name": "2"})),
            entry(serde_json::json!({"io.containerd.image.name": "named.com/x:3"})),
            entry(serde_json::json!({})),
        ],
    })
    .to_string()
    .into_bytes();
    let named = replace_member(&image.oci, "index.json", &index);
    // A Docker archive whose layer files are gzipped.
    let layer_gz = |name: &str| gzip(&member(&image.docker, name));
    let docker_gz = replace_member(
        &replace_member(&image.docker, "a/layer.tar", &layer_gz("a/layer.tar")),
        "b/layer.tar",
        &layer_gz("b/layer.tar"),
    );
    let daemon = Daemon::start_default().await;
    let named = write_file(daemon.dir(), "named.tar", &named);
    let docker_gz = write_file(daemon.dir(), "docker-gz.tar", &docker_gz);
    let runs: [(&str, Vec<&str>); 4] = [
        ("plain", vec![]),
        ("base", vec!["--base-name", "example.com/keep"]),
        (
            "digests",
            vec!["--digests", "--base-name", "example.com/keep"],
        ),
        ("skip", vec!["--digests", "--skip-digest-for-named"]),
    ];
    for (what, flags) in &runs {
        let mut outcomes = Vec::new();
        for ctr in Ctr::BOTH {
            let ns = format!("names-{what}-{ctr:?}").to_lowercase();
            let mut args = vec!["--no-unpack"];
            args.extend(flags.iter().copied());
            args.push(named.to_str().unwrap());
            let out = daemon.ctr(ctr, &{
                let mut all = vec!["-n", ns.as_str(), "images", "import"];
                all.extend(args.iter().copied());
                all
            });
            out.ok();
            let listed = daemon
                .ctr(ctr, &["-n", &ns, "images", "ls", "-q"])
                .ok()
                .to_string();
            outcomes.push(listed);
        }
        assert_eq!(outcomes[0], outcomes[1], "{what}: ours, then containerd's");
        if *what == "digests" {
            let mut names: Vec<&str> = outcomes[0].lines().collect();
            names.sort();
            let by_digest = format!("example.com/keep@{}", image.manifest);
            assert_eq!(
                names,
                [
                    "example.com/keep:1",
                    "example.com/keep:2",
                    by_digest.as_str(),
                    "named.com/x:3"
                ]
            );
        }
    }
    let mut outcomes = Vec::new();
    for ctr in Ctr::BOTH {
        let ns = format!("docker-gz-{ctr:?}").to_lowercase();
        // The index is named so that it stays (an index no image holds goes with the next
        // collection, whenever that runs).
        let args = [
            "--index-name",
            "example.com/idx:1",
            docker_gz.to_str().unwrap(),
        ];
        outcomes.push(import(&daemon, ctr, &ns, &args, "").await);
    }
    assert_eq!(
        outcomes[0], outcomes[1],
        "gzipped Docker layers: ours, then containerd's"
    );
    assert!(
        outcomes[0].images_ls.contains("example.com/test/image:v1"),
        "{}",
        outcomes[0].images_ls
    );
}

#[tokio::test]
async fn a_docker_archive_reuses_the_compressed_layers_the_store_has() {
    if !prerequisites() {
        return;
    }
    let image = test_image();
    let daemon = Daemon::start_default().await;
    let oci = write_file(daemon.dir(), "oci.tar", &image.oci);
    let docker = write_file(daemon.dir(), "docker.tar", &image.docker);
    let mut listed = Vec::new();
    for ctr in Ctr::BOTH {
        // Unpacking the OCI image labels its gzip layers with their plain digests; the Docker
        // archive's plain layers then resolve to those blobs.
        let ns = format!("reuse-{ctr:?}").to_lowercase();
        for args in [
            vec!["--base-name", "example.com/oci", oci.to_str().unwrap()],
            vec![docker.to_str().unwrap()],
        ] {
            let mut all = vec!["-n", ns.as_str(), "images", "import"];
            all.extend(args);
            daemon.ctr(ctr, &all).ok();
        }
        let content = content_labels(&daemon, &ns, &image.oci_index).await;
        let docker_manifest = content
            .iter()
            .find(|(digest, labels)| {
                **digest != image.manifest
                    && labels.contains_key("containerd.io/gc.ref.content.l.0")
            })
            .map(|(_, labels)| labels.clone())
            .unwrap_or_else(|| panic!("{ctr:?}: no Docker manifest in {content:?}"));
        assert_eq!(
            docker_manifest["containerd.io/gc.ref.content.l.0"], image.gzip_layers[0],
            "{ctr:?}"
        );
        assert_eq!(
            docker_manifest["containerd.io/gc.ref.content.l.1"], image.gzip_layers[1],
            "{ctr:?}"
        );
        listed.push(
            daemon
                .ctr(ctr, &["-n", &ns, "images", "ls"])
                .ok()
                .to_string(),
        );
    }
    assert_eq!(listed[0], listed[1], "ours, then containerd's");
}

/// An OCI layout of one image with `layers` (plain tars, gzipped here), named `name`; returns the
/// archive and the top chain ID.
#[tokio::test]
async fn a_130_layer_image_imports_mounts_and_makes_containers_with_both_ctrs() {
    if !prerequisites() {
        return;
    }
    const LAYERS: usize = 130;
    // Layer i adds layers/<i> and rewrites `top`; layer 64 whites out layers/3, layer 100 makes
    // `opq` opaque (hiding layer 0's opq/old).
    let layers: Vec<Vec<u8>> = (0..LAYERS)
        .map(|i| {
            let own = format!("layers/{i}");
            let top = format!("{i}\n");
            let mut members: Vec<(&str, Option<&[u8]>)> = vec![
                ("layers", None),
                (own.as_str(), Some(own.as_bytes())),
                ("top", Some(top.as_bytes())),
            ];
            match i {
                0 => members.extend([("opq", None), ("opq/old", Some(&b"old"[..]))]),
                64 => members.push(("layers/.wh.3", Some(&b""[..]))),
                100 => members.extend([
                    ("opq", None),
                    ("opq/.wh..wh..opq", Some(&b""[..])),
                    ("opq/new", Some(&b"new"[..])),
                ]),
                _ => {}
            }
            tar_of(&members)
        })
        .collect();
    let (archive, chain) = oci_layout_of("example.com/long:130", &layers);
    let daemon = Daemon::start_default().await;
    let path = write_file(daemon.dir(), "long.tar", &archive);
    for ctr in Ctr::BOTH {
        let ns = format!("long-{ctr:?}").to_lowercase();
        let ns = ns.as_str();
        daemon
            .ctr(ctr, &["-n", ns, "images", "import", path.to_str().unwrap()])
            .ok();
        let target = daemon.dir().join(format!("{ns}-mnt"));
        std::fs::create_dir_all(&target).unwrap();
        let target_text = target.to_str().unwrap();
        let out = daemon.ctr(
            ctr,
            &[
                "-n",
                ns,
                "images",
                "mount",
                "example.com/long:130",
                target_text,
            ],
        );
        assert_eq!(out.ok(), format!("{chain}\n{target_text}\n"), "{ctr:?}");
        let read = |p: &str| std::fs::read(target.join(p)).ok();
        assert_eq!(read("top").as_deref(), Some(&b"129\n"[..]), "{ctr:?}");
        assert_eq!(read("layers/3"), None, "{ctr:?}: whited out by layer 64");
        assert_eq!(read("opq/old"), None, "{ctr:?}: opaque from layer 100");
        assert_eq!(read("opq/new").as_deref(), Some(&b"new"[..]), "{ctr:?}");
        let present = std::fs::read_dir(target.join("layers")).unwrap().count();
        assert_eq!(present, LAYERS - 1, "{ctr:?}");
        daemon
            .ctr(ctr, &["-n", ns, "images", "unmount", "--rm", target_text])
            .ok();
        assert!(
            rcontainerd_tests::mounts::mounts_under(&target)
                .unwrap()
                .is_empty(),
            "{ctr:?}"
        );
        // A container from the imported image.
        daemon
            .ctr(
                ctr,
                &[
                    "-n",
                    ns,
                    "containers",
                    "create",
                    "example.com/long:130",
                    "long",
                ],
            )
            .ok();
        let info = daemon.ctr(ctr, &["-n", ns, "containers", "info", "long"]);
        assert!(
            info.ok().contains("\"SnapshotKey\": \"long\""),
            "{ctr:?}: {}",
            info.stdout
        );
    }
}
