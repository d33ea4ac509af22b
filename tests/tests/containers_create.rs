//! `ctr containers create`: our ctr and containerd 1.6.20's, each against rcontainerd and against a
//! real containerd started in a temporary directory, from the same image built through the API in
//! every daemon (a layer with `/etc/passwd` and `/etc/group`, a config with an environment,
//! entrypoint, command, working directory, user, stop signal and labels, a manifest, the image
//! record, and the layer "unpacked" by preparing a snapshot, extracting the layer into it and
//! committing it under the chain ID). The records `ctr containers info` prints — the spec our ctr
//! generates included — must be the same for both ctrs, field for field, on both daemons; so must
//! the snapshots and the failures. An image that is not unpacked is unpacked by both ctrs through
//! the daemon's Diff service, with the same snapshots and labels as a result.
//!
//! Needs root (mounts), `/usr/bin/containerd` and `/usr/bin/ctr`; otherwise it reports the missing
//! prerequisite (`rcontainerd_pkg::prereq`).

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcontainerd_api::client::{leased, namespaced, Dialer};
use rcontainerd_api::services::content::content_client::ContentClient;
use rcontainerd_api::services::content::{WriteAction, WriteContentRequest};
use rcontainerd_api::services::images::images_client::ImagesClient;
use rcontainerd_api::services::images::{CreateImageRequest, Image};
use rcontainerd_api::services::leases::leases_client::LeasesClient;
use rcontainerd_api::services::leases::CreateRequest;
use rcontainerd_api::services::snapshots::snapshots_client::SnapshotsClient;
use rcontainerd_api::services::snapshots::{CommitSnapshotRequest, PrepareSnapshotRequest};
use rcontainerd_api::types::Descriptor;
use rcontainerd_tests::containerd::{Containerd, CONTAINERD};
use rcontainerd_tests::{Ctr, Daemon};
use sha2::Digest as _;
use tonic::transport::Channel;

const NS: &str = "default";
const DEBIAN_CTR: &str = "/usr/bin/ctr";
/// The lease that holds the test image's content and snapshots in every daemon.
const IMAGE_LEASE: &str = "test-image";
const IMAGE: &str = "example.com/app:1";
/// An image whose layer is not unpacked.
const PACKED_IMAGE: &str = "example.com/packed:1";
const SNAPSHOTTER: &str = "overlayfs";

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:App:/home/app:/bin/sh\n";
const GROUP: &str = "root:x:0:\napp:x:1001:\nstaff:x:50:app\nwheel:x:10:root,app\n";

fn prerequisites_met() -> bool {
    let missing: Vec<&str> = [
        (nix::unistd::geteuid().is_root(), "root (mounting needs it)"),
        (Path::new(CONTAINERD).is_file(), CONTAINERD),
        (Path::new(DEBIAN_CTR).is_file(), DEBIAN_CTR),
    ]
    .into_iter()
    .filter_map(|(present, what)| (!present).then_some(what))
    .collect();
    if !missing.is_empty() {
        rcontainerd_pkg::prereq::missing(missing.join(", "));
    }
    missing.is_empty()
}

/// One daemon under test: rcontainerd (the harness's) or a real containerd.
enum Under {
    Rcontainerd(Box<Daemon>),
    Containerd(Containerd),
}

impl Under {
    fn name(&self) -> &'static str {
        match self {
            Under::Rcontainerd(_) => "rcontainerd",
            Under::Containerd(_) => "containerd",
        }
    }

    fn socket(&self) -> PathBuf {
        match self {
            Under::Rcontainerd(d) => d.socket(),
            Under::Containerd(c) => c.socket(),
        }
    }

    async fn channel(&self) -> Channel {
        Dialer::new()
            .connect(self.socket())
            .await
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", self.name()))
    }

    fn ctr(&self, which: Ctr, args: &[&str]) -> rcontainerd_tests::CtrOutput {
        which.run(&self.socket(), args)
    }
}

/// rcontainerd and containerd, each with the test images.
async fn both_daemons() -> Vec<Under> {
    let ours = Under::Rcontainerd(Box::new(Daemon::start_default().await));
    let reference = Under::Containerd(Containerd::start());
    let daemons = vec![ours, reference];
    for daemon in &daemons {
        build_images(&daemon.channel().await).await;
    }
    daemons
}

fn sha256(data: &[u8]) -> String {
    format!("sha256:{:x}", sha2::Sha256::digest(data))
}

/// The layer: `/etc/passwd`, `/etc/group` and `/app/hello.txt` saying `hello`.
fn layer_tar(hello: &str) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let add_dir = |builder: &mut tar::Builder<Vec<u8>>, path: &str| {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
        header.set_size(0);
        header.set_mtime(1_700_000_000);
        header.set_uid(0);
        header.set_gid(0);
        builder
            .append_data(&mut header, path, std::io::empty())
            .unwrap();
    };
    add_dir(&mut builder, "etc/");
    add_dir(&mut builder, "app/");
    for (path, body) in [
        ("etc/passwd", PASSWD),
        ("etc/group", GROUP),
        ("app/hello.txt", hello),
    ] {
        let mut header = tar::Header::new_ustar();
        header.set_mode(0o644);
        header.set_size(body.len() as u64);
        header.set_mtime(1_700_000_000);
        header.set_uid(0);
        header.set_gid(0);
        builder
            .append_data(&mut header, path, body.as_bytes())
            .unwrap();
    }
    builder.into_inner().unwrap()
}

fn descriptor_json(media_type: &str, data: &[u8]) -> serde_json::Value {
    serde_json::json!({"mediaType": media_type, "digest": sha256(data), "size": data.len()})
}

async fn write_blob(channel: &Channel, data: &[u8]) {
    let digest = sha256(data);
    let reference = format!("test-{digest}");
    let requests = vec![
        WriteContentRequest {
            action: WriteAction::Write as i32,
            r#ref: reference.clone(),
            total: data.len() as i64,
            expected: digest.clone(),
            data: data.to_vec().into(),
            ..Default::default()
        },
        WriteContentRequest {
            action: WriteAction::Commit as i32,
            r#ref: reference,
            offset: data.len() as i64,
            total: data.len() as i64,
            expected: digest.clone(),
            ..Default::default()
        },
    ];
    let stream = tonic::codegen::tokio_stream::iter(requests);
    let written = async {
        let mut responses = ContentClient::new(channel.clone())
            .write(leased(stream, NS, IMAGE_LEASE))
            .await?
            .into_inner();
        while responses.message().await?.is_some() {}
        Ok::<(), tonic::Status>(())
    };
    if let Err(status) = written.await {
        panic!("writing {digest}: {status}");
    }
}

/// Builds both test images in `channel`'s daemon, the first unpacked in overlayfs.
async fn build_images(channel: &Channel) {
    LeasesClient::new(channel.clone())
        .create(namespaced(
            CreateRequest {
                id: IMAGE_LEASE.into(),
                labels: HashMap::new(),
            },
            NS,
        ))
        .await
        .expect("creating the image lease");
    for (name, user, unpack) in [(IMAGE, "app", true), (PACKED_IMAGE, "", false)] {
        let layer = layer_tar(name);
        let diff_id = sha256(&layer);
        let config = serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "User": user,
                "Env": ["PATH=/usr/bin:/bin", "LANG=C.UTF-8", "SHARED=image"],
                "Entrypoint": ["/bin/entry"],
                "Cmd": ["--serve", "<&>"],
                "WorkingDir": "/app",
                "StopSignal": "SIGQUIT",
                "Labels": {"org.example.from-config": name},
            },
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        });
        let config = serde_json::to_vec(&config).unwrap();
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": descriptor_json("application/vnd.oci.image.config.v1+json", &config),
            "layers": [descriptor_json("application/vnd.oci.image.layer.v1.tar", &layer)],
        });
        let manifest = serde_json::to_vec(&manifest).unwrap();
        for blob in [&layer, &config, &manifest] {
            write_blob(channel, blob).await;
        }
        ImagesClient::new(channel.clone())
            .create(namespaced(
                CreateImageRequest {
                    image: Some(Image {
                        name: name.into(),
                        labels: [("org.example.image".to_string(), "record".to_string())].into(),
                        target: Some(Descriptor {
                            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                            digest: sha256(&manifest),
                            size: manifest.len() as i64,
                            annotations: HashMap::new(),
                        }),
                        ..Default::default()
                    }),
                    source_date_epoch: None,
                },
                NS,
            ))
            .await
            .unwrap_or_else(|s| panic!("creating image {name}: {s}"));
        if unpack {
            unpack_layer(channel, &layer, &diff_id).await;
        }
    }
}

/// "Unpacks" the one-layer image: prepares a snapshot on no parent, extracts the layer into its
/// mount and commits it as the chain ID (a one-layer image's chain ID is its diff ID).
async fn unpack_layer(channel: &Channel, layer: &[u8], chain_id: &str) {
    let key = "unpack-tmp";
    let mut snapshots = SnapshotsClient::new(channel.clone());
    let mounts = snapshots
        .prepare(leased(
            PrepareSnapshotRequest {
                snapshotter: SNAPSHOTTER.into(),
                key: key.into(),
                parent: String::new(),
                labels: HashMap::new(),
            },
            NS,
            IMAGE_LEASE,
        ))
        .await
        .expect("preparing the unpack snapshot")
        .into_inner()
        .mounts;
    assert_eq!(
        mounts.len(),
        1,
        "a snapshot on no parent is one bind mount: {mounts:?}"
    );
    let target = tempfile::tempdir().unwrap();
    nix::mount::mount(
        Some(mounts[0].source.as_str()),
        target.path(),
        None::<&str>,
        nix::mount::MsFlags::MS_BIND | nix::mount::MsFlags::MS_REC,
        None::<&str>,
    )
    .expect("mounting the unpack snapshot");
    let extracted = tar::Archive::new(layer).unpack(target.path());
    nix::mount::umount2(target.path(), nix::mount::MntFlags::MNT_DETACH).expect("unmounting");
    extracted.expect("extracting the layer");
    snapshots
        .commit(leased(
            CommitSnapshotRequest {
                snapshotter: SNAPSHOTTER.into(),
                name: chain_id.into(),
                key: key.into(),
                labels: HashMap::new(),
            },
            NS,
            IMAGE_LEASE,
        ))
        .await
        .expect("committing the unpacked layer");
}

/// `text` with RFC 3339 UTC times replaced by `<time>`, `id` by `<id>`.
fn neutral(text: &str, id: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('"') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let end = rest.find('"').unwrap_or(rest.len());
        let inner = &rest[..end];
        let is_time = inner.len() >= 20
            && inner.ends_with('Z')
            && inner.as_bytes()[4] == b'-'
            && inner.as_bytes()[10] == b'T'
            && inner[..4].bytes().all(|b| b.is_ascii_digit());
        if is_time {
            out.push_str("<time>");
            rest = &rest[end..];
        }
    }
    out.push_str(rest);
    out.replace(id, "<id>")
}

/// Runs `ctr containers create <flags> <positional…>` with both ctrs against `daemon` (ids
/// `<id>-ours` and `<id>-debian`), and returns each container's `containers info` (printed by
/// containerd's ctr) and its snapshot's `snapshots info`, made neutral.
fn create_with_both(
    daemon: &Under,
    id: &str,
    flags: &[&str],
    positional: &[&str],
) -> Vec<(Ctr, String, String)> {
    let mut results = Vec::new();
    for which in Ctr::BOTH {
        let full_id = format!("{id}-{}", format!("{which:?}").to_lowercase());
        let mut args = vec!["containers", "create"];
        args.extend_from_slice(flags);
        let mut positional: Vec<&str> = positional.to_vec();
        // The image (or rootfs) first, then the id, then the command.
        positional.insert(1.min(positional.len()), &full_id);
        args.extend(positional.iter().copied());
        let out = daemon.ctr(which, &args);
        out.ok();
        assert_eq!(out.stdout, "", "{which:?} ctr printed on create");
        let info = daemon.ctr(Ctr::Debian, &["containers", "info", &full_id]);
        let ours_info = daemon.ctr(Ctr::Ours, &["containers", "info", &full_id]);
        assert_eq!(
            ours_info.ok(),
            info.ok(),
            "our `containers info` differs from containerd's ctr's on {}",
            daemon.name()
        );
        let snapshot = daemon.ctr(Ctr::Debian, &["snapshots", "info", &full_id]);
        let snapshot = if snapshot.success() {
            snapshot.stdout.clone()
        } else {
            snapshot.stderr.clone()
        };
        results.push((
            which,
            neutral(info.ok(), &full_id),
            neutral(&snapshot, &full_id),
        ));
    }
    results
}

/// Both ctrs' records equal each other on each daemon and across the daemons; returns the one
/// record.
fn assert_same_everywhere(
    daemons: &[Under],
    id: &str,
    flags: &[&str],
    positional: &[&str],
) -> String {
    let mut seen: Option<(String, String, String)> = None;
    for daemon in daemons {
        for (which, info, snapshot) in create_with_both(daemon, id, flags, positional) {
            let label = format!("{which:?} ctr on {}", daemon.name());
            match &seen {
                None => seen = Some((label, info, snapshot)),
                Some((first, first_info, first_snapshot)) => {
                    assert_eq!(
                        &info, first_info,
                        "containers info after create {flags:?}: {label} vs {first}"
                    );
                    assert_eq!(
                        &snapshot, first_snapshot,
                        "snapshots info after create {flags:?}: {label} vs {first}"
                    );
                }
            }
        }
    }
    seen.expect("two daemons").1
}

/// Only the image lease is left: the create's temporary lease is gone.
fn assert_only_image_lease(daemon: &Under) {
    for which in Ctr::BOTH {
        let leases = daemon.ctr(which, &["leases", "ls", "-q"]);
        assert_eq!(
            leases.ok(),
            format!("{IMAGE_LEASE}\n"),
            "leases on {}",
            daemon.name()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_container_gets_containerds_record_spec_and_snapshot() {
    if !prerequisites_met() {
        return;
    }
    let daemons = both_daemons().await;

    // Defaults: the image's environment, entrypoint and command, working directory, user
    // resolved in the layer's /etc/passwd and /etc/group, labels and stop signal.
    let info = assert_same_everywhere(&daemons, "plain", &[], &[IMAGE]);
    for expected in [
        "\"Image\": \"example.com/app:1\"",
        "\"io.containerd.image.config.stop-signal\": \"SIGQUIT\"",
        "\"org.example.from-config\": \"example.com/app:1\"",
        "\"org.example.image\": \"record\"",
        "\"SnapshotKey\": \"<id>\"",
        "\"Snapshotter\": \"overlayfs\"",
        "\"type_url\": \"containerd.runc.v1.Options\"",
        "\"cgroupsPath\": \"/default/<id>\"",
        "\"cwd\": \"/app\"",
        "\"/bin/entry\",\n                \"--serve\",\n                \"\\u003c\\u0026\\u003e\"",
        "\"uid\": 1000,\n                \"gid\": 1001,\n                \"additionalGids\": [\n                    1001,\n                    50,\n                    10\n                ]",
        "\"PATH=/usr/bin:/bin\"",
    ] {
        assert!(info.contains(expected), "{expected} not in\n{info}");
    }

    // Flags: environment (file and flags, a bare name), labels (also annotations),
    // annotations, mounts, a read-only root, a command, cwd, tty, host network, a joined
    // namespace, capabilities, privileges, memory and CPU limits, rootfs propagation, snapshot
    // labels, the snapshotter named.
    let env_file = tempfile::NamedTempFile::new().unwrap();
    writeln!(env_file.as_file(), "FROM_FILE=1\nSHARED=file").unwrap();
    let env_path = env_file.path().to_str().unwrap().to_string();
    let flags = [
        "--snapshotter",
        "overlayfs",
        "--snapshotter-label",
        "org.example.snap=1",
        "--snapshotter-label",
        "bare",
        "--env-file",
        &env_path,
        "--env",
        "SHARED=flag",
        "--env",
        "LANG",
        "--label",
        "org.example.cli=yes",
        "--label",
        "org.example.image=overridden",
        "--annotation",
        "org.example.note=<&>",
        "--mount",
        "type=bind,src=/tmp,dst=/host,options=rbind:ro",
        "--read-only",
        "--cwd",
        "/work",
        "-t",
        "--net-host",
        "--with-ns",
        "pid:/proc/1/ns/pid",
        "--cap-add",
        "CAP_SYS_ADMIN",
        "--cap-drop",
        "CAP_KILL",
        "--allow-new-privs",
        "--memory-limit",
        "268435456",
        "--cpu-quota",
        "50000",
        "--cpu-period",
        "100000",
        "--rootfs-propagation",
        "rslave",
        "--apparmor-profile",
        "unconfined",
        "--rdt-class",
        "gold",
    ];
    let info = assert_same_everywhere(&daemons, "flags", &flags, &[IMAGE, "/bin/other", "arg"]);
    for expected in [
        "\"org.example.image\": \"overridden\"",
        "\"org.example.note\": \"\\u003c\\u0026\\u003e\"",
        "\"SHARED=flag\"",
        "\"FROM_FILE=1\"",
        "\"TERM=xterm\"",
        "\"readonly\": true",
        "\"terminal\": true",
        "\"rootfsPropagation\": \"rslave\"",
        "\"limit\": 268435456",
        "\"destination\": \"/etc/resolv.conf\"",
        "\"path\": \"/proc/1/ns/pid\"",
        "\"apparmorProfile\": \"unconfined\"",
        "\"closID\": \"gold\"",
    ] {
        assert!(info.contains(expected), "{expected} not in\n{info}");
    }
    // A bare name unsets a variable among those set so far, before the image's environment is
    // merged in: the image's LANG stays.
    assert!(info.contains("\"LANG=C.UTF-8\""), "{info}");
    assert!(!info.contains("noNewPrivileges"), "{info}");

    // Another runtime, with a config path: its options are runtimeoptions'.
    let info = assert_same_everywhere(
        &daemons,
        "runtime",
        &[
            "--runtime",
            "io.containerd.kata.v2",
            "--runtime-config-path",
            "/etc/kata.toml",
        ],
        &[IMAGE],
    );
    assert!(
        info.contains("\"type_url\": \"runtimeoptions.v1.Options\""),
        "{info}"
    );

    // Privileged: this process's capabilities, every device allowed, the host's devices (read
    // from /dev by each ctr, moments apart), and one more device.
    let info = assert_same_everywhere(
        &daemons,
        "privileged",
        &["--privileged", "--device", "/dev/null"],
        &[IMAGE],
    );
    for expected in [
        "\"CAP_SYS_ADMIN\"",
        "\"path\": \"/dev/null\"",
        "\"allow\": true,\n                        \"access\": \"rwm\"",
    ] {
        assert!(info.contains(expected), "{expected} not in\n{info}");
    }
    assert!(!info.contains("maskedPaths"), "{info}");

    for daemon in &daemons {
        assert_only_image_lease(daemon);
        // Both ctrs list the same containers.
        let ours = daemon.ctr(Ctr::Ours, &["containers", "ls"]);
        let debian = daemon.ctr(Ctr::Debian, &["containers", "ls"]);
        assert_eq!(ours.ok(), debian.ok());
        assert_eq!(ours.stdout.lines().count(), 9, "{}", ours.stdout);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rootfs_and_spec_file_containers_match_containerds() {
    if !prerequisites_met() {
        return;
    }
    let daemons = both_daemons().await;
    let rootfs = tempfile::tempdir().unwrap();
    let rootfs_path = rootfs.path().to_str().unwrap().to_string();
    let info = assert_same_everywhere(
        &daemons,
        "rootfs",
        &["--rootfs", "--label", "a=b", "--env", "X=1"],
        &[&rootfs_path, "/bin/sh"],
    );
    assert!(
        info.contains(&format!("\"path\": \"{rootfs_path}\"")),
        "{info}"
    );
    assert!(info.contains("\"Snapshotter\": \"\""), "{info}");

    // A spec file as containerd's ctr writes it (`ctr oci spec`), with labels.
    let spec = daemons[1].ctr(Ctr::Debian, &["oci", "spec"]);
    let spec_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(spec_file.path(), spec.ok()).unwrap();
    let spec_path = spec_file.path().to_str().unwrap().to_string();
    let info = assert_same_everywhere(
        &daemons,
        "specfile",
        &["--config", &spec_path, "--label", "from=cli"],
        &[],
    );
    assert!(info.contains("\"from\": \"cli\""), "{info}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_read_like_containerds() {
    if !prerequisites_met() {
        return;
    }
    let daemons = both_daemons().await;
    for daemon in &daemons {
        daemon
            .ctr(Ctr::Debian, &["containers", "create", IMAGE, "taken"])
            .ok();
    }
    // `ID` stands for an id of each ctr's own: a create that fails after preparing the snapshot
    // leaves it until the next collection, which a second create of the same id would trip over.
    let cases: &[&[&str]] = &[
        &["containers", "create"],
        &["containers", "create", IMAGE],
        &["containers", "create", "example.com/missing:1", "ID"],
        &["containers", "create", IMAGE, "taken"],
        &["c", "create", "--cap-add", "SYS_ADMIN", IMAGE, "ID"],
        &["c", "create", "--with-ns", "pid", IMAGE, "ID"],
        &["c", "create", "--with-ns", "bogus:/x", IMAGE, "ID"],
        &["c", "create", "--mount", "kind=bind", IMAGE, "ID"],
        &["c", "create", "--annotation", "novalue", IMAGE, "ID"],
        &["c", "create", "--seccomp-profile", "/x.json", IMAGE, "ID"],
        &["c", "create", "--config", "/nonexistent/spec.json", "ID"],
        &["c", "create", "--config", "/x.json", "ID", "extra"],
        &["c", "create", "--bogus-flag", IMAGE, "ID"],
        &["c", "create", "--env-file", "/nonexistent/env", IMAGE, "ID"],
        &["c", "create", "--device", "/nonexistent/dev", IMAGE, "ID"],
    ];
    let mut first: Vec<Option<(String, Option<i32>)>> = vec![None; cases.len()];
    for daemon in &daemons {
        for (i, case) in cases.iter().enumerate() {
            let mut outcomes = Vec::new();
            for which in Ctr::BOTH {
                let id = format!("c{i}-{}", format!("{which:?}").to_lowercase());
                let args: Vec<&str> = case
                    .iter()
                    .map(|arg| if *arg == "ID" { id.as_str() } else { arg })
                    .collect();
                let out = daemon.ctr(which, &args);
                out.failed();
                outcomes.push((neutral(&out.stderr, &id), out.status.code()));
            }
            let (ours, debian) = (&outcomes[0], &outcomes[1]);
            // urfave/cli and clap word an unknown flag differently; the exit code is the same.
            if !case.contains(&"--bogus-flag") {
                assert_eq!(ours.0, debian.0, "{case:?} on {}", daemon.name());
            }
            assert_eq!(ours.1, debian.1, "{case:?}");
            match &first[i] {
                None => first[i] = Some(debian.clone()),
                Some(seen) => assert_eq!(seen, debian, "{case:?}: rcontainerd vs containerd"),
            }
        }
        // Nothing was left behind: only the one container, its snapshot and the image lease.
        let containers = daemon.ctr(Ctr::Ours, &["containers", "ls", "-q"]);
        assert_eq!(containers.ok(), "taken\n");
        assert_only_image_lease(daemon);
    }
    assert_eq!(
        first[2].as_ref().unwrap().0,
        "ctr: image \"example.com/missing:1\": not found\n"
    );
    assert_eq!(
        first[0].as_ref().unwrap().0,
        "ctr: image ref must be provided: invalid argument\n"
    );
}

/// `ctr content ls` without its age column (the blobs were written moments apart).
fn content_without_ages(text: &str) -> String {
    text.lines()
        .map(|line| {
            let mut cells: Vec<&str> = line.split('\t').filter(|c| !c.is_empty()).collect();
            if cells.len() > 2 {
                cells.remove(2);
            }
            // Labels are printed in random order by containerd's ctr.
            if cells.len() > 2 {
                let mut labels: Vec<&str> = cells[cells.len() - 1].split(',').collect();
                labels.sort();
                return format!(
                    "{} {}",
                    cells[..cells.len() - 1].join(" "),
                    labels.join(",")
                );
            }
            cells.join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Log lines and extraction keys made neutral: `time="…" ` dropped, `extract-<nanos>-<random>`
/// becomes `extract-<unique>`.
fn neutral_log(text: &str) -> String {
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        let line = match line.strip_prefix("time=\"") {
            Some(rest) => rest.split_once("\" ").map_or(line, |(_, tail)| tail),
            None => line,
        };
        let mut rest = line;
        while let Some(at) = rest.find("extract-") {
            out.push_str(&rest[..at]);
            out.push_str("extract-<unique>");
            rest = &rest[at..];
            rest = &rest[rest.find(' ').unwrap_or(rest.len())..];
        }
        out.push_str(rest);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_that_is_not_unpacked_is_unpacked_through_the_diff_service() {
    if !prerequisites_met() {
        return;
    }
    // Each ctr gets daemons of its own: the first unpack would serve the second. What each daemon
    // shows afterwards, per ctr: outcomes[ctr][daemon].
    let mut outcomes: Vec<Vec<String>> = Vec::new();
    for which in Ctr::BOTH {
        let daemons = both_daemons().await;
        let mut per_daemon = Vec::new();
        for daemon in &daemons {
            let out = daemon.ctr(which, &["c", "create", PACKED_IMAGE, "packed"]);
            let mut outcome = format!(
                "exit {:?}\n{}{}",
                out.status.code(),
                out.stdout,
                neutral_log(&out.stderr)
            );
            for args in [
                &["containers", "info", "packed"][..],
                &["snapshots", "ls"],
                &["leases", "ls", "-q"],
            ] {
                let listed = daemon.ctr(Ctr::Debian, args);
                outcome += &neutral(&listed.stdout, "packed");
                outcome += &listed.stderr;
            }
            // The namespace's default snapshotter (label containerd.io/defaults/snapshotter)
            // applies when --snapshotter is not given: the image is unpacked into it.
            daemon
                .ctr(
                    Ctr::Debian,
                    &[
                        "ns",
                        "label",
                        NS,
                        "containerd.io/defaults/snapshotter=native",
                    ],
                )
                .ok();
            let out = daemon.ctr(which, &["c", "create", IMAGE, "in-native"]);
            outcome += &format!(
                "native: exit {:?}\n{}",
                out.status.code(),
                neutral_log(&out.stderr)
            );
            for args in [
                &["containers", "info", "in-native"][..],
                &["snapshots", "--snapshotter", "native", "ls"],
                &["leases", "ls", "-q"],
            ] {
                let listed = daemon.ctr(Ctr::Debian, args);
                outcome += &neutral(&listed.stdout, "in-native");
                outcome += &listed.stderr;
            }
            let content = daemon.ctr(Ctr::Debian, &["content", "ls"]);
            outcome += &content_without_ages(content.ok());
            per_daemon.push(outcome);
        }
        outcomes.push(per_daemon);
    }
    let names = ["rcontainerd", "containerd"];
    for (d, name) in names.iter().enumerate() {
        assert_eq!(
            outcomes[0][d], outcomes[1][d],
            "our ctr vs containerd's on {name}"
        );
    }
    assert_eq!(outcomes[0][0], outcomes[0][1], "rcontainerd vs containerd");
    // The image was unpacked: the layer labelled with its diff ID, the config with the snapshot,
    // in overlayfs and then in the namespace's default, native.
    let outcome = &outcomes[0][0];
    assert!(outcome.starts_with("exit Some(0)\n"), "{outcome}");
    assert!(outcome.contains("native: exit Some(0)\n"), "{outcome}");
    for expected in [
        "containerd.io/gc.ref.snapshot.overlayfs=sha256:",
        "containerd.io/gc.ref.snapshot.native=sha256:",
        "containerd.io/uncompressed=sha256:",
        "\"Snapshotter\": \"native\"",
    ] {
        assert!(outcome.contains(expected), "{expected} not in\n{outcome}");
    }
}

/// The events a create published, one `<topic> <payload>` per line, times and namespaces dropped,
/// `id` neutral.
fn event_lines(printed: &str, id: &str) -> Vec<String> {
    printed
        .lines()
        .filter_map(|line| {
            // `<Go time> <namespace> <topic> <json>`: the topic is the first word with a slash.
            let at = line.find(" /")?;
            let (topic, payload) = line[at + 1..]
                .split_once(' ')
                .unwrap_or((&line[at + 1..], ""));
            Some(format!("{topic} {}", neutral(payload, id)))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_publishes_the_events_containerds_does() {
    if !prerequisites_met() {
        return;
    }
    let daemons = both_daemons().await;
    let mut seen: Option<Vec<String>> = None;
    for daemon in &daemons {
        let events = Ctr::Debian.spawn(&daemon.socket(), &["events"]);
        // Subscribed once an event made afterwards shows: only then do the creates begin.
        for attempt in 0..200 {
            let marker = format!("ev-subscribed-{attempt}");
            daemon
                .ctr(Ctr::Debian, &["namespaces", "create", &marker])
                .ok();
            std::thread::sleep(Duration::from_millis(100));
            if events.stdout().contains("ev-subscribed-") {
                break;
            }
            assert!(attempt < 199, "ctr events never showed an event");
        }
        let mut segments = Vec::new();
        let mut printed_before = events.stdout().len();
        for which in Ctr::BOTH {
            let id = format!("ev-{}", format!("{which:?}").to_lowercase());
            daemon
                .ctr(which, &["c", "create", "--label", "x=y", IMAGE, &id])
                .ok();
            events.wait_for_stdout(Duration::from_secs(20), "the create's events", |out| {
                out.contains(&format!("/containers/create {{\"id\":\"{id}\""))
            });
            let printed = events.stdout();
            segments.push(event_lines(&printed[printed_before..], &id));
            printed_before = printed.len();
        }
        events.kill();
        assert_eq!(
            segments[0],
            segments[1],
            "events of our create vs containerd's ctr's on {}",
            daemon.name()
        );
        assert!(
            segments[0]
                .iter()
                .any(|e| e.starts_with("/snapshot/prepare {\"key\":\"<id>\"")),
            "{:?}",
            segments[0]
        );
        match &seen {
            None => seen = Some(segments[0].clone()),
            Some(first) => assert_eq!(first, &segments[0], "rcontainerd vs containerd"),
        }
    }
}
