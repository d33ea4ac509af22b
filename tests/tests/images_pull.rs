//! `ctr images pull` and `ctr content fetch` with both ctrs from a registry of the test's own
//! (Debian's docker-registry on a free port, storage in a temporary directory), into which skopeo
//! pushes OCI images built here (three gzip layers, the second whiting out a file of the first;
//! an index of two platforms): both ctrs leave the same image, content labels and snapshots;
//! an index gives this platform's manifest, `--platform`'s, or all in the index's order; with
//! htpasswd a pull without `--user` fails alike and one with it succeeds; with bearer tokens from
//! a token server of the test's own (`registry_token`), only `--user` gets a token, and a refused
//! pull leaves nothing; HTTPS (a CA of the test's own) needs `--tlscacert` or `-k`; an ingest half
//! written before the pull, or left by a pull killed mid-layer (the ctr, or the daemon with
//! `kill -9` and started again), is resumed with a range request for the rest only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcontainerd_api::client::namespaced;
use rcontainerd_api::services::content::content_client::ContentClient;
use rcontainerd_api::services::content::{
    ListContentRequest, ListStatusesRequest, WriteAction, WriteContentRequest,
};
use rcontainerd_api::services::snapshots::snapshots_client::SnapshotsClient;
use rcontainerd_api::services::snapshots::ListSnapshotsRequest;
use rcontainerd_tests::containerd::Containerd;
use rcontainerd_tests::layers::{digest_of, gzip, hex, noise, tar_of};
use rcontainerd_tests::openssl::{self, OPENSSL};
use rcontainerd_tests::registry_token::TokenServer;
use rcontainerd_tests::slow_proxy::SlowProxy;
use rcontainerd_tests::{Ctr, Daemon};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const OCI_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const SNAPSHOTTER: &str = "overlayfs";
const REGISTRY: &str = "/usr/bin/docker-registry";
const SKOPEO: &str = "/usr/bin/skopeo";
const HTPASSWD: &str = "/usr/bin/htpasswd";

/// Root (unpacking), containerd's ctr, a registry, skopeo and htpasswd are needed.
fn prerequisites() -> bool {
    if !nix::unistd::geteuid().is_root() {
        rcontainerd_pkg::prereq::missing("root (unpacking snapshots needs it)");
        return false;
    }
    for (path, what) in [
        (rcontainerd_tests::binaries::DEBIAN_CTR, "containerd's ctr"),
        (REGISTRY, "docker-registry (Debian package docker-registry)"),
        (SKOPEO, "skopeo (Debian package skopeo)"),
        (HTPASSWD, "htpasswd (Debian package apache2-utils)"),
    ] {
        if !Path::new(path).is_file() {
            rcontainerd_pkg::prereq::missing(format!("{what} at {path}"));
            return false;
        }
    }
    true
}

/// The test image as an OCI archive.
struct TestImage {
    archive: Vec<u8>,
    manifest: String,
    config: String,
    layers: Vec<(String, Vec<u8>)>,
    /// The chain ID of all three layers.
    chain: String,
    /// An OCI archive whose index.json names an index of the image for this platform and for
    /// another (same layers, a config and manifest of its own); that index's digest and the
    /// other platform's manifest's.
    multi: Vec<u8>,
    multi_index: String,
    other_manifest: String,
    other_platform: String,
}

fn test_image() -> TestImage {
    let big = noise(600 * 1024, 7);
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
    let layer3 = tar_of(&[("data", None), ("data/noise", Some(&big))]);
    let plain = [layer1, layer2, layer3];
    let diff_ids: Vec<String> = plain.iter().map(|l| digest_of(l)).collect();
    let gz: Vec<Vec<u8>> = plain.iter().map(|l| gzip(l)).collect();
    let mut chain = diff_ids[0].clone();
    for diff_id in &diff_ids[1..] {
        chain = digest_of(format!("{chain} {diff_id}").as_bytes());
    }
    let config = serde_json::json!({
        "architecture": std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
        "os": "linux",
        "config": {"Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    })
    .to_string()
    .into_bytes();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": digest_of(&config), "size": config.len()},
        "layers": gz.iter().map(|g| serde_json::json!(
            {"mediaType": OCI_GZIP, "digest": digest_of(g), "size": g.len()}
        )).collect::<Vec<_>>(),
    })
    .to_string()
    .into_bytes();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": OCI_MANIFEST,
            "digest": digest_of(&manifest),
            "size": manifest.len(),
        }],
    })
    .to_string()
    .into_bytes();
    let blob = |data: &[u8]| format!("blobs/sha256/{}", hex(&digest_of(data)));
    let names: Vec<String> = [&config, &manifest]
        .into_iter()
        .chain(gz.iter())
        .map(|d| blob(d))
        .collect();
    let mut members: Vec<(&str, Option<&[u8]>)> = vec![
        ("oci-layout", Some(br#"{"imageLayoutVersion":"1.0.0"}"#)),
        ("index.json", Some(&index)),
        ("blobs", None),
        ("blobs/sha256", None),
        (&names[0], Some(&config)),
        (&names[1], Some(&manifest)),
    ];
    for (name, data) in names[2..].iter().zip(&gz) {
        members.push((name, Some(data)));
    }
    let other_arch = if host_platform() == "linux/arm64" {
        "amd64"
    } else {
        "arm64"
    };
    let mut other_config: serde_json::Value = serde_json::from_slice(&config).unwrap();
    other_config["architecture"] = other_arch.into();
    let other_config = other_config.to_string().into_bytes();
    let mut other_manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    other_manifest["config"]["digest"] = digest_of(&other_config).into();
    other_manifest["config"]["size"] = other_config.len().into();
    let other_manifest = other_manifest.to_string().into_bytes();
    let entry = |manifest: &[u8], platform: &str| {
        let (os, arch) = platform.split_once('/').unwrap();
        serde_json::json!({
            "mediaType": OCI_MANIFEST,
            "digest": digest_of(manifest),
            "size": manifest.len(),
            "platform": {"architecture": arch, "os": os},
        })
    };
    let other_platform = format!("linux/{other_arch}");
    let multi_index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [entry(&other_manifest, &other_platform), entry(&manifest, &host_platform())],
    })
    .to_string()
    .into_bytes();
    let top = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": OCI_INDEX, "digest": digest_of(&multi_index), "size": multi_index.len()}],
    })
    .to_string()
    .into_bytes();
    let more = [
        blob(&other_config),
        blob(&other_manifest),
        blob(&multi_index),
    ];
    let mut multi_members = members.clone();
    multi_members[1] = ("index.json", Some(&top[..]));
    multi_members.push((&more[0], Some(&other_config[..])));
    multi_members.push((&more[1], Some(&other_manifest[..])));
    multi_members.push((&more[2], Some(&multi_index[..])));
    TestImage {
        multi: tar_of(&multi_members),
        multi_index: digest_of(&multi_index),
        other_manifest: digest_of(&other_manifest),
        other_platform,
        archive: tar_of(&members),
        manifest: digest_of(&manifest),
        config: digest_of(&config),
        layers: gz.iter().map(|g| (digest_of(g), g.clone())).collect(),
        chain,
    }
}

/// A docker-registry of the test's own; killed when dropped.
struct Registry {
    child: Child,
    host: String,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

const USER: &str = "puller";
const PASSWORD: &str = "s3cret";

/// Who may use a registry.
enum Auth<'a> {
    Anyone,
    /// htpasswd with [`USER`] and [`PASSWORD`].
    Password,
    /// Bearer tokens from this server.
    Token(&'a TokenServer),
}

impl Registry {
    /// Starts a registry; with `auth`, behind htpasswd with [`USER`] and [`PASSWORD`].
    fn start(auth: bool) -> Registry {
        let auth = if auth { Auth::Password } else { Auth::Anyone };
        Registry::start_on("127.0.0.1", auth, None)
    }

    /// Starts a registry on `host`; with `tls`, HTTPS with that certificate and key.
    fn start_on(host: &str, auth: Auth<'_>, tls: Option<(&Path, &Path)>) -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("rcd-registry-")
            .tempdir()
            .unwrap();
        let port = std::net::TcpListener::bind((host, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: {host}:{port}\n",
            dir.path().join("data").display()
        );
        if let Some((cert, key)) = tls {
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            ));
        }
        if let Auth::Token(server) = auth {
            config.push_str(&server.registry_auth_yaml());
        } else if let Auth::Password = auth {
            let htpasswd = dir.path().join("htpasswd");
            let made = Command::new(HTPASSWD)
                .args(["-B", "-b", "-c"])
                .arg(&htpasswd)
                .args([USER, PASSWORD])
                .output()
                .unwrap();
            assert!(made.status.success(), "htpasswd: {made:?}");
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = dir.path().join("registry.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(REGISTRY)
            .arg("serve")
            .arg(&config_path)
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let registry = Registry {
            child,
            host: host.to_string(),
            port,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect((host, port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the registry does not listen: {}",
                registry.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    fn address(&self) -> std::net::SocketAddr {
        format!("{}:{}", self.host, self.port).parse().unwrap()
    }

    fn reference(&self, name: &str) -> String {
        format!("{}:{}/{name}", self.host, self.port)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Pushes an OCI archive with skopeo as `name`.
    fn push(&self, archive: &[u8], name: &str, creds: bool) {
        let path = self
            ._dir
            .path()
            .join(format!("{}.tar", name.replace(['/', ':'], "_")));
        std::fs::write(&path, archive).unwrap();
        let mut command = Command::new(SKOPEO);
        command.args([
            "--insecure-policy",
            "copy",
            "--all",
            // An uncompressed layer would be gzipped (a new digest) without it.
            "--preserve-digests",
            "--dest-tls-verify=false",
        ]);
        if creds {
            command.arg(format!("--dest-creds={USER}:{PASSWORD}"));
        }
        let pushed = command
            .arg(format!("oci-archive:{}", path.display()))
            .arg(format!("docker://{}", self.reference(name)))
            .output()
            .unwrap();
        assert!(
            pushed.status.success(),
            "skopeo copy: {}\n{}",
            String::from_utf8_lossy(&pushed.stderr),
            self.log_text()
        );
    }

    /// `(status, bytes)` of each GET of a blob, from the access log.
    fn blob_gets(&self, repository: &str, digest: &str) -> Vec<(u16, u64)> {
        let needle = format!("\"GET /v2/{repository}/blobs/{digest} ");
        self.log_text()
            .lines()
            .filter_map(|line| {
                let at = line.find(&needle)?;
                let rest = &line[at + needle.len()..];
                let rest = &rest[rest.find('"')? + 1..];
                let mut fields = rest.split_whitespace();
                Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
            })
            .collect()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every blob of a namespace and its labels.
async fn content_labels(daemon: &Daemon, ns: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut stream = ContentClient::new(daemon.channel())
        .list(namespaced(ListContentRequest { filters: vec![] }, ns))
        .await
        .unwrap()
        .into_inner();
    let mut out = BTreeMap::new();
    while let Some(response) = stream.message().await.unwrap() {
        for info in response.info {
            out.insert(info.digest, info.labels.into_iter().collect());
        }
    }
    out
}

/// `(key, parent, kind)` of every committed snapshot of a namespace.
async fn snapshots(daemon: &Daemon, ns: &str) -> Vec<(String, String, i32)> {
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
            out.push((info.name, info.parent, info.kind));
        }
    }
    out.sort();
    out
}

/// What a pull left behind, to compare between the ctrs.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    images_ls: String,
    check: String,
    content: BTreeMap<String, BTreeMap<String, String>>,
    snapshots: Vec<(String, String, i32)>,
}

async fn outcome(daemon: &Daemon, ctr: Ctr, ns: &str) -> Outcome {
    Outcome {
        images_ls: daemon
            .ctr(ctr, &["-n", ns, "images", "ls"])
            .ok()
            .to_string(),
        check: daemon
            .ctr(ctr, &["-n", ns, "images", "check"])
            .ok()
            .to_string(),
        content: content_labels(daemon, ns).await,
        snapshots: snapshots(daemon, ns).await,
    }
}

fn host_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    format!("linux/{arch}")
}

/// The last lines of a pull's output: the unpack and the time it took.
fn assert_unpack_lines(stdout: &str, manifest: &str, ctr: Ctr) {
    let lines: Vec<&str> = stdout.lines().collect();
    let n = lines.len();
    assert!(n >= 2, "{ctr:?}: {stdout}");
    assert_eq!(
        lines[n - 2],
        format!("unpacking {} {manifest}...", host_platform()),
        "{ctr:?}: {stdout}"
    );
    assert!(
        lines[n - 1].starts_with("done: ") && lines[n - 1].ends_with("s\t"),
        "{ctr:?}: {stdout}"
    );
}

#[tokio::test]
async fn both_ctrs_pull_an_image_alike() {
    if !prerequisites() {
        return;
    }
    let image = test_image();
    let registry = Registry::start(false);
    registry.push(&image.archive, "test/img:1", false);
    let reference = registry.reference("test/img:1");
    let mut outcomes = Vec::new();
    for ctr in Ctr::BOTH {
        // A daemon each: what one pulled must not help the other.
        let daemon = Daemon::start_default().await;
        let pulled = daemon.ctr(
            ctr,
            &["-n", "pull", "images", "pull", "--plain-http", &reference],
        );
        let stdout = pulled.ok();
        assert_unpack_lines(stdout, &image.manifest, ctr);
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("{reference}:")) && l.contains("resolved")),
            "{ctr:?}: {stdout}"
        );
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("layer-{}:", image.layers[2].0))
                    && l.contains("done")),
            "{ctr:?}: {stdout}"
        );
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("elapsed: ") && l.contains("total: ")),
            "{ctr:?}: {stdout}"
        );
        let outcome = outcome(&daemon, ctr, "pull").await;
        assert!(
            outcome.images_ls.contains(&reference) && outcome.images_ls.contains(&image.manifest),
            "{ctr:?}: {}",
            outcome.images_ls
        );
        assert!(
            outcome.check.contains("complete (4/4)"),
            "{ctr:?}: {}",
            outcome.check
        );
        assert!(
            outcome
                .snapshots
                .iter()
                .any(|(name, _, _)| *name == image.chain),
            "{ctr:?}: {:?}",
            outcome.snapshots
        );
        // The labels containerd's client sets.
        let source = "containerd.io/distribution.source.127.0.0.1";
        let manifest = &outcome.content[&image.manifest];
        assert_eq!(manifest[source], "test/img", "{ctr:?}");
        assert_eq!(
            manifest["containerd.io/gc.ref.content.config"], image.config,
            "{ctr:?}"
        );
        for (i, (digest, _)) in image.layers.iter().enumerate() {
            assert_eq!(
                &manifest[&format!("containerd.io/gc.ref.content.l.{i}")],
                digest,
                "{ctr:?}"
            );
            assert_eq!(outcome.content[digest][source], "test/img", "{ctr:?}");
        }
        assert_eq!(
            outcome.content[&image.config]["containerd.io/gc.ref.snapshot.overlayfs"], image.chain,
            "{ctr:?}"
        );
        outcomes.push(outcome);

        // A second pull finds everything there; a namespace that had none of it takes the
        // blobs from the other without fetching them, and they are `done`, not `exists`.
        // Without --plain-http: a loopback registry is plain HTTP anyway, as containerd's hosts have it.
        let again = daemon.ctr(ctr, &["-n", "pull", "images", "pull", &reference]);
        let stdout = again.ok();
        assert_unpack_lines(stdout, &image.manifest, ctr);
        let status = |stdout: &str, key: &str| {
            stdout
                .lines()
                .find(|l| l.starts_with(&format!("{key}:")))
                .and_then(|l| l.split_whitespace().nth(1))
                .map(str::to_string)
        };
        let manifest_key = format!("manifest-{}", image.manifest);
        // containerd's ctr says `exists` only when its first 100 ms tick comes before the end
        // of the fetch (else every blob is `done`): ours is checked.
        if ctr == Ctr::Ours {
            assert_eq!(
                status(stdout, &manifest_key).as_deref(),
                Some("exists"),
                "{ctr:?}: {stdout}"
            );
        }
        let gets = registry.blob_gets("test/img", &image.layers[2].0).len();
        let other = daemon.ctr(
            ctr,
            &["-n", "other", "images", "pull", "--plain-http", &reference],
        );
        let stdout = other.ok();
        assert_eq!(
            status(stdout, &manifest_key).as_deref(),
            Some("done"),
            "{ctr:?}: {stdout}"
        );
        assert_eq!(
            registry.blob_gets("test/img", &image.layers[2].0).len(),
            gets,
            "{ctr:?}"
        );
    }
    let (ours, theirs) = (&outcomes[0], &outcomes[1]);
    for (digest, labels) in &theirs.content {
        assert_eq!(
            ours.content.get(digest),
            Some(labels),
            "labels of {digest}: ours then containerd's"
        );
    }
    assert_eq!(ours, theirs, "ours then containerd's");
}

#[tokio::test]
async fn a_registry_with_a_password_needs_user() {
    if !prerequisites() {
        return;
    }
    let image = test_image();
    let registry = Registry::start(true);
    registry.push(&image.archive, "test/img:1", true);
    let reference = registry.reference("test/img:1");
    for ctr in Ctr::BOTH {
        let daemon = Daemon::start_default().await;
        let refused = daemon.ctr(
            ctr,
            &["-n", "auth", "images", "pull", "--plain-http", &reference],
        );
        let stderr = refused.failed();
        assert!(
            stderr.starts_with(&format!(
                "ctr: failed to resolve reference \"{reference}\": "
            )) && stderr.contains("401 Unauthorized"),
            "{ctr:?}: {stderr}"
        );
        let wrong = format!("{USER}:wrong");
        let refused = daemon.ctr(
            ctr,
            &[
                "-n",
                "auth",
                "images",
                "pull",
                "--plain-http",
                "-u",
                &wrong,
                &reference,
            ],
        );
        let stderr = refused.failed();
        assert!(stderr.contains("401 Unauthorized"), "{ctr:?}: {stderr}");
        let user = format!("{USER}:{PASSWORD}");
        let pulled = daemon.ctr(
            ctr,
            &[
                "-n",
                "auth",
                "images",
                "pull",
                "--plain-http",
                "--user",
                &user,
                &reference,
            ],
        );
        assert_unpack_lines(pulled.ok(), &image.manifest, ctr);
        let check = daemon.ctr(ctr, &["-n", "auth", "images", "check"]);
        assert!(
            check.ok().contains("complete (4/4)"),
            "{ctr:?}: {}",
            check.stdout
        );
    }
}

/// Reads the pulled image's files through `images mount`, then unmounts.
async fn assert_mounted_files(daemon: &Daemon, ctr: Ctr, ns: &str, image: &TestImage) {
    let target = daemon.dir().join(format!("{ns}-mount"));
    std::fs::create_dir_all(&target).unwrap();
    let target_text = target.to_str().unwrap();
    let reference = daemon
        .ctr(ctr, &["-n", ns, "images", "ls", "-q"])
        .ok()
        .trim()
        .to_string();
    let out = daemon.ctr(ctr, &["-n", ns, "images", "mount", &reference, target_text]);
    assert_eq!(
        out.ok(),
        format!("{}\n{target_text}\n", image.chain),
        "{ctr:?}"
    );
    let read = |path: &str| std::fs::read(target.join(path));
    assert_eq!(read("etc/hello").unwrap(), b"hello\n", "{ctr:?}");
    assert_eq!(read("etc/new").unwrap(), b"new\n", "{ctr:?}");
    assert!(!target.join("etc/gone").exists(), "{ctr:?}: the whiteout");
    assert_eq!(read("data/noise").unwrap(), noise(600 * 1024, 7), "{ctr:?}");
    let out = daemon.ctr(ctr, &["-n", ns, "images", "unmount", "--rm", target_text]);
    assert_eq!(out.ok(), format!("{target_text}\n"), "{ctr:?}");
}

#[tokio::test]
async fn a_registry_with_token_auth_needs_user_for_the_token() {
    if !prerequisites() {
        return;
    }
    if !Path::new(OPENSSL).is_file() {
        rcontainerd_pkg::prereq::missing(format!("openssl at {OPENSSL}"));
        return;
    }
    let tokens = TokenServer::start(USER, PASSWORD);
    let image = test_image();
    let registry = Registry::start_on("127.0.0.1", Auth::Token(&tokens), None);
    registry.push(&image.archive, "test/img:1", true);
    let reference = registry.reference("test/img:1");
    let scope = ["repository:test/img:pull".to_string()];
    let wrong = format!("{USER}:wrong");
    let user = format!("{USER}:{PASSWORD}");
    for ctr in Ctr::BOTH {
        let daemon = Daemon::start_default().await;
        // Without credentials, then with a wrong password: the realm gives no token, so the
        // registry refuses.
        let seen = tokens.requests().len();
        for credentials in [None, Some(&wrong)] {
            let mut args = vec!["-n", "token", "images", "pull", "--plain-http"];
            if let Some(credentials) = credentials {
                args.extend(["--user", credentials]);
            }
            args.push(&reference);
            let refused = daemon.ctr(ctr, &args);
            // containerd's ctr logs each host it tried first.
            let stderr = refused.failed().lines().last().unwrap_or_default();
            // containerd's names the status; ours (oci-client keeps only the body) the
            // token server's words.
            let why = match (ctr, credentials) {
                (Ctr::Ours, None) => "anonymous token: {\"error\":\"bad credentials\"}",
                (Ctr::Ours, Some(_)) => "token: {\"error\":\"bad credentials\"}",
                (Ctr::Debian, None) => "anonymous token: unexpected status: 401 Unauthorized",
                (Ctr::Debian, Some(_)) => "oauth token: unexpected status: 401 Unauthorized",
            };
            assert_eq!(
                stderr,
                format!(
                    "ctr: failed to resolve reference \"{reference}\": failed to authorize: \
                     failed to fetch {why}"
                ),
                "{ctr:?} {credentials:?}"
            );
        }
        let asked = tokens.requests()[seen..].to_vec();
        assert!(
            asked.iter().any(|r| r.user.is_none()) && asked.iter().any(|r| r.user.is_some()),
            "{ctr:?}: {asked:?}"
        );
        assert!(
            asked.iter().all(|r| r.status == 401 && r.scopes == scope),
            "{ctr:?}: {asked:?}"
        );
        // Nothing of the image is left: no image, blob, ingest or snapshot.
        let listed = daemon.ctr(ctr, &["-n", "token", "images", "ls", "-q"]);
        assert_eq!(listed.ok(), "", "{ctr:?}");
        assert!(content_labels(&daemon, "token").await.is_empty(), "{ctr:?}");
        assert!(ingests(&daemon, "token").await.is_empty(), "{ctr:?}");
        assert!(snapshots(&daemon, "token").await.is_empty(), "{ctr:?}");

        // With them: a token for pulling this repository, which the registry takes.
        let seen = tokens.requests().len();
        let gets = registry.blob_gets("test/img", &image.layers[2].0).len();
        let pulled = daemon.ctr(
            ctr,
            &[
                "-n",
                "token",
                "images",
                "pull",
                "--plain-http",
                "--user",
                &user,
                &reference,
            ],
        );
        assert_unpack_lines(pulled.ok(), &image.manifest, ctr);
        let asked = tokens.requests()[seen..].to_vec();
        assert!(
            !asked.is_empty()
                && asked.iter().all(|r| r.status == 200
                    && r.user.as_deref() == Some(USER)
                    && r.scopes == scope),
            "{ctr:?}: {asked:?}"
        );
        // Ours asks for `bytes=0-` (206), containerd's for all of it (200).
        let layer_gets = registry.blob_gets("test/img", &image.layers[2].0)[gets..].to_vec();
        assert!(
            matches!(layer_gets[..], [(200 | 206, n)] if n == image.layers[2].1.len() as u64),
            "{ctr:?}: the layer's GETs: {layer_gets:?}"
        );
        let check = daemon.ctr(ctr, &["-n", "token", "images", "check"]);
        assert!(
            check.ok().contains("complete (4/4)"),
            "{ctr:?}: {}",
            check.stdout
        );
        assert!(
            snapshots(&daemon, "token")
                .await
                .iter()
                .any(|(name, _, _)| *name == image.chain),
            "{ctr:?}"
        );
        assert_mounted_files(&daemon, ctr, "token", &image).await;
    }

    // Against containerd itself, both ctrs do the same.
    let containerd = Containerd::start();
    for ctr in Ctr::BOTH {
        let ns = format!("token-{ctr:?}");
        let refused = ctr.run(
            &containerd.socket(),
            &["-n", &ns, "images", "pull", "--plain-http", &reference],
        );
        assert!(
            refused
                .failed()
                .lines()
                .last()
                .unwrap_or_default()
                .contains(": failed to authorize: failed to fetch anonymous token: "),
            "{ctr:?}: {}",
            refused.stderr
        );
        let pulled = ctr.run(
            &containerd.socket(),
            &[
                "-n",
                &ns,
                "images",
                "pull",
                "--plain-http",
                "--user",
                &user,
                &reference,
            ],
        );
        assert_unpack_lines(pulled.ok(), &image.manifest, ctr);
        let check = ctr.run(&containerd.socket(), &["-n", &ns, "images", "check"]);
        assert!(
            check.ok().contains("complete (4/4)"),
            "{ctr:?}: {}",
            check.stdout
        );
    }
}

/// Writes the first `len` bytes of `data` into ingest `reference`, without committing.
async fn write_part(daemon: &Daemon, ns: &str, reference: &str, data: &[u8], len: usize) {
    let digest = digest_of(data);
    let requests = vec![
        WriteContentRequest {
            action: WriteAction::Stat as i32,
            r#ref: reference.to_string(),
            total: data.len() as i64,
            expected: digest.clone(),
            ..Default::default()
        },
        WriteContentRequest {
            action: WriteAction::Write as i32,
            r#ref: reference.to_string(),
            offset: 0,
            total: data.len() as i64,
            expected: digest,
            data: data[..len].to_vec().into(),
            ..Default::default()
        },
    ];
    let mut responses = ContentClient::new(daemon.channel())
        .write(namespaced(tokio_stream::iter(requests), ns))
        .await
        .unwrap()
        .into_inner();
    while responses.message().await.unwrap().is_some() {}
    let statuses = ContentClient::new(daemon.channel())
        .list_statuses(namespaced(ListStatusesRequest { filters: vec![] }, ns))
        .await
        .unwrap()
        .into_inner()
        .statuses;
    let status = statuses
        .iter()
        .find(|s| s.r#ref == reference)
        .unwrap_or_else(|| panic!("no ingest {reference}: {statuses:?}"));
    assert_eq!(status.offset, len as i64);
}

#[tokio::test]
async fn a_half_written_layer_is_resumed_with_a_range_request() {
    if !prerequisites() {
        return;
    }
    let image = test_image();
    let registry = Registry::start(false);
    registry.push(&image.archive, "test/img:1", false);
    let reference = registry.reference("test/img:1");
    let (digest, data) = &image.layers[2];
    let half = data.len() / 2;
    for ctr in Ctr::BOTH {
        let daemon = Daemon::start_default().await;
        write_part(&daemon, "resume", &format!("layer-{digest}"), data, half).await;
        let before = registry.blob_gets("test/img", digest).len();
        let pulled = daemon.ctr(
            ctr,
            &[
                "-n",
                "resume",
                "images",
                "pull",
                "--plain-http",
                "--max-concurrent-downloads",
                "1",
                &reference,
            ],
        );
        assert_unpack_lines(pulled.ok(), &image.manifest, ctr);
        let gets = registry.blob_gets("test/img", digest);
        assert_eq!(
            gets[before..],
            [(206, (data.len() - half) as u64)],
            "{ctr:?}: the layer's GETs (status, bytes)"
        );
        let check = daemon.ctr(ctr, &["-n", "resume", "images", "check"]);
        assert!(
            check.ok().contains("complete (4/4)"),
            "{ctr:?}: {}",
            check.stdout
        );
    }
}

#[test]
fn a_reference_needs_a_host_and_an_object_as_with_containerds_ctr() {
    // No daemon is dialled before the reference is checked... except by containerd's ctr,
    // which dials first: both fail the same way for a missing reference.
    for ctr in Ctr::BOTH {
        let out = ctr.run(Path::new("/nonexistent.sock"), &["images", "pull"]);
        assert_eq!(
            out.failed(),
            "ctr: please provide an image reference to pull\n",
            "{ctr:?}"
        );
    }
}

#[tokio::test]
async fn an_index_gives_this_platforms_manifest_or_the_one_asked_for() {
    if !prerequisites() {
        return;
    }
    let image = test_image();
    let registry = Registry::start(false);
    registry.push(&image.multi, "test/multi:1", false);
    let reference = registry.reference("test/multi:1");
    let mut outcomes = Vec::new();
    let mut unpacked = Vec::new();
    for ctr in Ctr::BOTH {
        let daemon = Daemon::start_default().await;
        let pulled = daemon.ctr(
            ctr,
            &[
                "-n",
                "multi",
                "images",
                "pull",
                "--plain-http",
                "--print-chainid",
                "--label",
                "a=b",
                &reference,
            ],
        );
        let stdout = pulled.ok();
        let lines: Vec<&str> = stdout.lines().collect();
        let n = lines.len();
        assert_eq!(
            lines[n - 3..n - 1],
            [
                format!("unpacking {} {}...", host_platform(), image.multi_index),
                format!("image chain ID: {}", image.chain),
            ],
            "{ctr:?}: {stdout}"
        );
        // This platform's manifest only; the index labelled with both.
        let content = content_labels(&daemon, "multi").await;
        assert!(content.contains_key(&image.manifest), "{ctr:?}");
        assert!(!content.contains_key(&image.other_manifest), "{ctr:?}");
        let index = &content[&image.multi_index];
        assert_eq!(
            index["containerd.io/gc.ref.content.m.0"], image.other_manifest,
            "{ctr:?}"
        );
        assert_eq!(
            index["containerd.io/gc.ref.content.m.1"], image.manifest,
            "{ctr:?}"
        );
        assert_eq!(
            index["containerd.io/distribution.source.127.0.0.1"], "test/multi",
            "{ctr:?}"
        );
        let listed = daemon.ctr(ctr, &["-n", "multi", "images", "ls"]);
        assert!(listed.ok().contains("a=b"), "{ctr:?}: {}", listed.stdout);

        // The other platform, asked for: its manifest and config, the layers there already.
        let other = daemon.ctr(
            ctr,
            &[
                "-n",
                "multi",
                "images",
                "pull",
                "--plain-http",
                "--platform",
                &image.other_platform,
                &reference,
            ],
        );
        let stdout = other.ok();
        assert!(
            stdout.contains(&format!(
                "unpacking {} {}...\n",
                image.other_platform, image.multi_index
            )),
            "{ctr:?}: {stdout}"
        );
        let content = content_labels(&daemon, "multi").await;
        assert!(content.contains_key(&image.other_manifest), "{ctr:?}");
        outcomes.push(outcome(&daemon, ctr, "multi").await);

        // Every platform: the unpack lines in the index's order.
        let all = daemon.ctr(
            ctr,
            &["-n", "all", "images", "pull", "--all-platforms", &reference],
        );
        let unpacking: Vec<String> = all
            .ok()
            .lines()
            .filter(|l| l.starts_with("unpacking "))
            .map(str::to_string)
            .collect();
        unpacked.push(unpacking);
    }
    assert_eq!(unpacked[0], unpacked[1], "ours then containerd's");
    assert_eq!(unpacked[0].len(), 2, "{:?}", unpacked[0]);
    assert_eq!(outcomes[0], outcomes[1], "ours then containerd's");
}

#[tokio::test]
async fn content_fetch_fetches_and_names_the_image_without_unpacking() {
    if !prerequisites() {
        return;
    }
    let image = test_image();
    let registry = Registry::start(false);
    registry.push(&image.archive, "test/img:1", false);
    let reference = registry.reference("test/img:1");
    let mut outcomes = Vec::new();
    for ctr in Ctr::BOTH {
        let daemon = Daemon::start_default().await;
        let fetched = daemon.ctr(
            ctr,
            &[
                "-n",
                "fetch",
                "content",
                "fetch",
                "--plain-http",
                &reference,
            ],
        );
        let stdout = fetched.ok();
        assert!(
            stdout
                .lines()
                .last()
                .is_some_and(|l| l.starts_with("elapsed: ")),
            "{ctr:?}: {stdout}"
        );
        let outcome = outcome(&daemon, ctr, "fetch").await;
        assert!(
            outcome.images_ls.contains(&reference),
            "{ctr:?}: {}",
            outcome.images_ls
        );
        assert!(
            outcome.snapshots.is_empty(),
            "{ctr:?}: {:?}",
            outcome.snapshots
        );
        assert_eq!(outcome.content.len(), 5, "{ctr:?}: {:?}", outcome.content);
        outcomes.push(outcome);
    }
    assert_eq!(outcomes[0], outcomes[1], "ours then containerd's");
}

/// An IPv4 address of this machine that is not a loopback one (containerd's ctr speaks plain
/// HTTP to loopback registries whatever the flags).
fn non_loopback_address() -> Option<String> {
    let out = Command::new("hostname").arg("-I").output().ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|a| a.parse::<std::net::Ipv4Addr>().ok())
        .find(|a| !a.is_loopback())
        .map(|a| a.to_string())
}

#[tokio::test]
async fn https_needs_a_known_ca_or_skip_verify() {
    if !prerequisites() {
        return;
    }
    if !Path::new(OPENSSL).is_file() {
        rcontainerd_pkg::prereq::missing(format!("openssl at {OPENSSL}"));
        return;
    }
    let Some(address) = non_loopback_address() else {
        rcontainerd_pkg::prereq::missing("an IPv4 address that is not a loopback one");
        return;
    };
    // A CA of the test's own and a certificate it signed for the address.
    let certs = tempfile::tempdir().unwrap();
    let dir = certs.path();
    openssl::run(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=rcontainerd-test-ca",
        ],
    );
    openssl::run(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
            "-subj",
            &format!("/CN={address}"),
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        format!("subjectAltName=IP:{address}\nbasicConstraints=CA:FALSE\n"),
    )
    .unwrap();
    openssl::run(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "leaf.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
    let image = test_image();
    let registry = Registry::start_on(
        &address,
        Auth::Anyone,
        Some((&dir.join("leaf.pem"), &dir.join("leaf.key"))),
    );
    registry.push(&image.archive, "test/img:1", false);
    let reference = registry.reference("test/img:1");
    let ca = dir.join("ca.pem");
    for ctr in Ctr::BOTH {
        let daemon = Daemon::start_default().await;
        let refused = daemon.ctr(ctr, &["-n", "tls", "images", "pull", &reference]);
        // containerd's ctr logs each host it tried first.
        let stderr = refused.failed().lines().last().unwrap_or_default();
        assert!(
            stderr.starts_with(&format!(
                "ctr: failed to resolve reference \"{reference}\": "
            )) && (stderr.contains("unknown authority") || stderr.contains("UnknownIssuer")),
            "{ctr:?}: {stderr}"
        );
        let pulled = daemon.ctr(ctr, &["-n", "tls", "images", "pull", "-k", &reference]);
        assert_unpack_lines(pulled.ok(), &image.manifest, ctr);
        let pulled = daemon.ctr(
            ctr,
            &[
                "-n",
                "tls2",
                "images",
                "pull",
                "--tlscacert",
                ca.to_str().unwrap(),
                &reference,
            ],
        );
        assert_unpack_lines(pulled.ok(), &image.manifest, ctr);
    }
}

/// `(ref, offset)` of a namespace's ingests.
async fn ingests(daemon: &Daemon, ns: &str) -> Vec<(String, i64)> {
    ContentClient::new(daemon.channel())
        .list_statuses(namespaced(ListStatusesRequest { filters: vec![] }, ns))
        .await
        .unwrap()
        .into_inner()
        .statuses
        .into_iter()
        .map(|s| (s.r#ref, s.offset))
        .collect()
}

#[tokio::test]
async fn a_pull_killed_mid_layer_resumes_where_it_stopped() {
    if !prerequisites() {
        return;
    }
    // One big layer, so that the pull can be caught half-way.
    let big = noise(16 << 20, 11);
    // A small layer first: ours unpacks it while the big one downloads.
    let small = tar_of(&[("small", Some(b"small\n"))]);
    let small_gz = gzip(&small);
    let layer = tar_of(&[("big", Some(&big))]);
    let gz = gzip(&layer);
    let small_chain = digest_of(&small);
    let config = serde_json::json!({
        "architecture": host_platform().split_once('/').unwrap().1,
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [digest_of(&small), digest_of(&layer)]},
    })
    .to_string()
    .into_bytes();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": digest_of(&config), "size": config.len()},
        "layers": [
            {"mediaType": OCI_GZIP, "digest": digest_of(&small_gz), "size": small_gz.len()},
            {"mediaType": OCI_GZIP, "digest": digest_of(&gz), "size": gz.len()},
        ],
    })
    .to_string()
    .into_bytes();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": digest_of(&manifest), "size": manifest.len()}],
    })
    .to_string()
    .into_bytes();
    let blob = |data: &[u8]| format!("blobs/sha256/{}", hex(&digest_of(data)));
    let names = [blob(&config), blob(&manifest), blob(&gz), blob(&small_gz)];
    let archive = tar_of(&[
        ("oci-layout", Some(br#"{"imageLayoutVersion":"1.0.0"}"#)),
        ("index.json", Some(&index)),
        ("blobs", None),
        ("blobs/sha256", None),
        (&names[0], Some(&config)),
        (&names[1], Some(&manifest)),
        (&names[2], Some(&gz)),
        (&names[3], Some(&small_gz)),
    ]);
    let registry = Registry::start(false);
    registry.push(&archive, "test/big:1", false);
    let reference = registry.reference("test/big:1");
    let digest = digest_of(&gz);
    let ingest_ref = format!("layer-{digest}");
    for ctr in Ctr::BOTH {
        let daemon = Daemon::start_default().await;
        let running = daemon.spawn_ctr(ctr, &["-n", "kill", "images", "pull", &reference]);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let now = ingests(&daemon, "kill").await;
            let unpacked = snapshots(&daemon, "kill")
                .await
                .iter()
                .any(|(name, _, _)| *name == small_chain);
            // Ours has unpacked the small layer while the big one is still coming.
            if now
                .iter()
                .any(|(r, offset)| *r == ingest_ref && *offset > 0 && *offset < gz.len() as i64)
                && (unpacked || ctr != Ctr::Ours)
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{ctr:?}: no ingest of {ingest_ref} part-way (with the first layer unpacked): {now:?}"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        running.kill();
        if ctr == Ctr::Debian {
            // containerd's ctr unpacks only once everything is fetched.
            assert!(snapshots(&daemon, "kill").await.is_empty());
        }
        // What the daemon holds once the killed ctr's stream has ended (and the registry has
        // logged the GET it cut).
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = registry.blob_gets("test/big", &digest).len();
        let offset = ingests(&daemon, "kill")
            .await
            .into_iter()
            .find(|(r, _)| *r == ingest_ref)
            .map(|(_, o)| o)
            .expect("the ingest stays for resumption");
        assert!(offset > 0 && offset < gz.len() as i64, "{offset}");
        let pulled = daemon.ctr(ctr, &["-n", "kill", "images", "pull", &reference]);
        assert_unpack_lines(pulled.ok(), &digest_of(&manifest), ctr);
        let gets = registry.blob_gets("test/big", &digest);
        assert_eq!(
            gets[before..],
            [(206, (gz.len() as i64 - offset) as u64)],
            "{ctr:?}: the layer's GETs after the kill (status, bytes)"
        );
        assert!(ingests(&daemon, "kill").await.is_empty());
    }
}

#[tokio::test]
async fn a_pull_resumes_the_ingest_a_daemon_killed_mid_layer_kept() {
    if !prerequisites() {
        return;
    }
    // One layer of 64 MiB that does not compress, uncompressed (gzip would only take time),
    // passed at 16 MiB/s: the daemon can be killed a good way into it.
    const SIZE: usize = 64 << 20;
    const RATE: u64 = 16 << 20;
    let big = noise(SIZE, 13);
    let layer = tar_of(&[("big", Some(&big))]);
    let digest = digest_of(&layer);
    let config = serde_json::json!({
        "architecture": host_platform().split_once('/').unwrap().1,
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [&digest]},
    })
    .to_string()
    .into_bytes();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": digest_of(&config), "size": config.len()},
        "layers": [{"mediaType": OCI_TAR, "digest": &digest, "size": layer.len()}],
    })
    .to_string()
    .into_bytes();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": digest_of(&manifest), "size": manifest.len()}],
    })
    .to_string()
    .into_bytes();
    let blob = |data: &[u8]| format!("blobs/sha256/{}", hex(&digest_of(data)));
    let names = [blob(&config), blob(&manifest), blob(&layer)];
    let archive = tar_of(&[
        ("oci-layout", Some(br#"{"imageLayoutVersion":"1.0.0"}"#)),
        ("index.json", Some(&index)),
        ("blobs", None),
        ("blobs/sha256", None),
        (&names[0], Some(&config)),
        (&names[1], Some(&manifest)),
        (&names[2], Some(&layer)),
    ]);
    let registry = Registry::start(false);
    registry.push(&archive, "test/huge:1", false);
    let proxy = SlowProxy::start(registry.address(), RATE);
    let reference = format!("127.0.0.1:{}/test/huge:1", proxy.port());
    let ingest_ref = format!("layer-{digest}");
    let size = layer.len() as i64;
    let pull = ["-n", "crash", "images", "pull", &reference];
    for ctr in Ctr::BOTH {
        let mut daemon = Daemon::start_default().await;
        let gets = registry.blob_gets("test/huge", &digest).len();
        let running = daemon.spawn_ctr(ctr, &pull);
        // The layer a good way in, and a good way from its end.
        let deadline = Instant::now() + Duration::from_secs(60);
        let acknowledged = loop {
            let now = ingests(&daemon, "crash").await;
            let offset = now.iter().find(|(r, _)| *r == ingest_ref).map(|(_, o)| *o);
            if let Some(offset) = offset.filter(|o| (8 << 20..size - (16 << 20)).contains(o)) {
                break offset;
            }
            assert!(
                Instant::now() < deadline,
                "{ctr:?}: no ingest of {ingest_ref} part-way: {now:?}\n{}\n{}",
                running.stdout(),
                running.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        daemon.kill9();
        let cut = running.wait(Duration::from_secs(30));
        assert!(
            !cut.success(),
            "{ctr:?}: the pull went on without its daemon"
        );
        daemon.restart().await.unwrap_or_else(|e| panic!("{e}"));

        // The restarted daemon kept the ingest, with at least what it had reported.
        let offset = ingests(&daemon, "crash")
            .await
            .into_iter()
            .find(|(r, _)| *r == ingest_ref)
            .map(|(_, o)| o)
            .unwrap_or_else(|| panic!("{ctr:?}: the ingest is gone after kill -9"));
        assert!(
            offset >= acknowledged && offset < size,
            "{ctr:?}: offset {offset}, {acknowledged} reported before the kill, of {size}"
        );

        // The registry logs the cut GET once the proxy has noticed the ctr gone.
        let deadline = Instant::now() + Duration::from_secs(20);
        while registry.blob_gets("test/huge", &digest).len() == gets {
            assert!(
                Instant::now() < deadline,
                "{ctr:?}: the cut GET is not logged: {}",
                registry.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The same pull again: it asks for the rest only, and completes.
        let gets = registry.blob_gets("test/huge", &digest).len();
        let sent = proxy.bytes_sent();
        let pulled = daemon.ctr(ctr, &pull);
        assert_unpack_lines(pulled.ok(), &digest_of(&manifest), ctr);
        assert_eq!(
            registry.blob_gets("test/huge", &digest)[gets..],
            [(206, (size - offset) as u64)],
            "{ctr:?}: the layer's GETs after the restart (status, bytes)"
        );
        let passed = proxy.bytes_sent() - sent;
        assert!(
            passed < (size - offset) as u64 + (64 << 10),
            "{ctr:?}: {passed} bytes passed for the {} missing",
            size - offset
        );
        assert!(ingests(&daemon, "crash").await.is_empty(), "{ctr:?}");
        let check = daemon.ctr(ctr, &["-n", "crash", "images", "check"]);
        assert!(
            check.ok().contains("complete (2/2)"),
            "{ctr:?}: {}",
            check.stdout
        );

        // The blob is the layer (its digest was checked at commit), and so is the snapshot.
        let info = daemon.ctr(ctr, &["-n", "crash", "content", "ls", "-q"]);
        assert!(info.ok().lines().any(|l| l == digest), "{ctr:?}");
        let target = daemon.dir().join("crash-mount");
        std::fs::create_dir_all(&target).unwrap();
        let target_text = target.to_str().unwrap();
        let mounted = daemon.ctr(
            ctr,
            &["-n", "crash", "images", "mount", &reference, target_text],
        );
        assert_eq!(
            mounted.ok(),
            format!("{digest}\n{target_text}\n"),
            "{ctr:?}"
        );
        assert!(
            std::fs::read(target.join("big")).unwrap() == big,
            "{ctr:?}: the file differs"
        );
        let out = daemon.ctr(
            ctr,
            &["-n", "crash", "images", "unmount", "--rm", target_text],
        );
        assert_eq!(out.ok(), format!("{target_text}\n"), "{ctr:?}");
    }
}
