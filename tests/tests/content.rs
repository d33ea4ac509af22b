//! The Content service against the real daemon and the content-local driver: containerd 1.6's Write
//! protocol (docs/wire-facts.md#content), per-namespace visibility, freeing disk on delete, resuming after
//! `kill -9`, and Debian's `ctr content` commands.
//!
//! The blobs here are held by no lease or image, so the daemons run without the garbage
//! collector, which would take them as containerd's does (`tests/gc.rs` covers collection).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use rcontainerd_api::client::namespaced;
use rcontainerd_api::services::content::content_client::ContentClient;
use rcontainerd_api::services::content::{
    AbortRequest, DeleteContentRequest, InfoRequest, ListContentRequest, ListStatusesRequest,
    ReadContentRequest, StatusRequest, UpdateRequest, WriteAction, WriteContentRequest,
    WriteContentResponse,
};
use rcontainerd_api::services::namespaces::DeleteNamespaceRequest;
use rcontainerd_tests::{
    labels, test_plugin_dir_without, uri, within, Ctr, Daemon, DaemonOptions, TestPlugin,
};
use tonic::codegen::tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Code, Status, Streaming};

const NS: &str = "default";
/// How long a Write stream may take to answer (or to end): a daemon that waits on a locked ref
/// instead of answering Unavailable hangs, and must fail the test instead.
const STREAM_TIMEOUT: Duration = Duration::from_secs(30);

fn client(daemon: &Daemon) -> ContentClient<Channel> {
    ContentClient::new(daemon.channel())
}

/// `sha256:<hex>` of `data`, by coreutils (independent of the daemon's hashing).
fn sha256(data: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("running sha256sum");
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    format!("sha256:{}", text.split_whitespace().next().unwrap())
}

/// Where content-local keeps a blob.
fn blob_path(daemon: &Daemon, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").unwrap();
    daemon
        .root()
        .join(uri::CONTENT)
        .join("blobs/sha256")
        .join(hex)
}

fn req(action: WriteAction, reference: &str, offset: i64, data: &[u8]) -> WriteContentRequest {
    WriteContentRequest {
        action: action as i32,
        r#ref: reference.to_owned(),
        offset,
        data: data.to_vec().into(),
        ..Default::default()
    }
}

fn commit(reference: &str, offset: i64, total: i64, expected: &str) -> WriteContentRequest {
    WriteContentRequest {
        total,
        expected: expected.to_owned(),
        ..req(WriteAction::Commit, reference, offset, &[])
    }
}

/// Sends every request, half-closes, and collects responses until the stream ends.
async fn write_all(
    daemon: &Daemon,
    ns: &str,
    requests: Vec<WriteContentRequest>,
) -> (Vec<WriteContentResponse>, Option<Status>) {
    let stream = tonic::codegen::tokio_stream::iter(requests);
    let exchange = async {
        let mut inbound = match client(daemon).write(namespaced(stream, ns)).await {
            Ok(response) => response.into_inner(),
            Err(status) => return (Vec::new(), Some(status)),
        };
        let mut responses = Vec::new();
        loop {
            match inbound.message().await {
                Ok(Some(r)) => responses.push(r),
                Ok(None) => return (responses, None),
                Err(status) => return (responses, Some(status)),
            }
        }
    };
    within(STREAM_TIMEOUT, "a Write stream", exchange).await
}

/// A lock-step Write stream: one request, then its response.
struct Session {
    tx: tokio::sync::mpsc::Sender<WriteContentRequest>,
    rx: Streaming<WriteContentResponse>,
}

impl Session {
    async fn open(
        daemon: &Daemon,
        ns: &str,
        first: WriteContentRequest,
    ) -> (Session, WriteContentResponse) {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tx.send(first).await.unwrap();
        let opening = async {
            let mut rx = client(daemon)
                .write(namespaced(ReceiverStream::new(rx), ns))
                .await
                .expect("write stream opens")
                .into_inner();
            let response = rx
                .message()
                .await
                .expect("first response")
                .expect("a response");
            (rx, response)
        };
        let (rx, response) = within(STREAM_TIMEOUT, "opening a Write stream", opening).await;
        (Session { tx, rx }, response)
    }

    async fn send(
        &mut self,
        request: WriteContentRequest,
    ) -> Result<Option<WriteContentResponse>, Status> {
        self.tx.send(request).await.unwrap();
        self.next().await
    }

    async fn next(&mut self) -> Result<Option<WriteContentResponse>, Status> {
        within(STREAM_TIMEOUT, "the next Write response", self.rx.message()).await
    }
}

/// Writes `data` as one WRITE + COMMIT and returns the committed digest.
async fn ingest(daemon: &Daemon, ns: &str, reference: &str, data: &[u8]) -> String {
    let (responses, error) = write_all(
        daemon,
        ns,
        vec![
            req(WriteAction::Write, reference, 0, data),
            commit(reference, data.len() as i64, data.len() as i64, ""),
        ],
    )
    .await;
    assert!(error.is_none(), "ingest {reference}: {error:?}");
    responses.last().expect("responses").digest.clone()
}

async fn info_code(daemon: &Daemon, ns: &str, digest: &str) -> Code {
    match client(daemon)
        .info(namespaced(
            InfoRequest {
                digest: digest.to_owned(),
            },
            ns,
        ))
        .await
    {
        Ok(_) => Code::Ok,
        Err(s) => s.code(),
    }
}

async fn statuses(daemon: &Daemon, ns: &str) -> Vec<(String, i64)> {
    client(daemon)
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
async fn every_message_gets_a_response_and_the_last_comes_once_more() {
    let daemon = Daemon::start_without_gc().await;
    let chunks: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 1000]).collect();
    let all: Vec<u8> = chunks.concat();
    let mut requests = Vec::new();
    let mut offset = 0;
    for chunk in &chunks {
        requests.push(req(WriteAction::Write, "counted", offset, chunk));
        offset += chunk.len() as i64;
    }
    requests.push(commit("counted", offset, offset, &sha256(&all)));
    let (responses, error) = write_all(&daemon, NS, requests).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(responses.len(), 6, "4 WRITE + COMMIT + the final once more");
    for (i, r) in responses[..4].iter().enumerate() {
        assert_eq!(r.action, WriteAction::Write as i32);
        assert_eq!(r.offset, 1000 * (i as i64 + 1));
        assert_eq!(r.digest, sha256(&all[..1000 * (i + 1)]), "running digest");
    }
    assert_eq!(responses[4], responses[5]);
    assert_eq!(responses[4].action, WriteAction::Commit as i32);
    assert_eq!(responses[4].digest, sha256(&all));
    assert_eq!(responses[4].offset, 4000);

    let info = client(&daemon)
        .info(namespaced(
            InfoRequest {
                digest: sha256(&all),
            },
            NS,
        ))
        .await
        .unwrap()
        .into_inner()
        .info
        .unwrap();
    assert_eq!(info.size, 4000);
    assert!(blob_path(&daemon, &sha256(&all)).is_file());
    assert!(
        statuses(&daemon, NS).await.is_empty(),
        "commit ends the ingest"
    );
}

#[tokio::test]
async fn lock_step_client_sees_one_extra_message_after_commit() {
    let daemon = Daemon::start_without_gc().await;
    let (mut s, stat) =
        Session::open(&daemon, NS, req(WriteAction::Stat, "lockstep", 0, &[])).await;
    assert_eq!((stat.action, stat.offset), (WriteAction::Stat as i32, 0));
    let w = s
        .send(req(WriteAction::Write, "", 0, b"abc"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(w.offset, 3);
    let c = s.send(commit("", 3, 3, "")).await.unwrap().unwrap();
    assert_eq!(c.digest, sha256(b"abc"));
    assert_eq!(s.next().await.unwrap(), Some(c), "final response once more");
    assert_eq!(
        s.next().await.unwrap(),
        None,
        "then the stream ends with OK"
    );
}

#[tokio::test]
async fn first_message_must_carry_a_ref() {
    let daemon = Daemon::start_without_gc().await;
    let (responses, error) = write_all(&daemon, NS, vec![req(WriteAction::Stat, "", 0, &[])]).await;
    assert!(responses.is_empty());
    let error = error.expect("refused");
    assert_eq!(error.code(), Code::InvalidArgument);
    assert_eq!(error.message(), "first message must have a reference");
}

#[tokio::test]
async fn stat_fields_stay_on_later_responses() {
    let daemon = Daemon::start_without_gc().await;
    let stat = WriteContentRequest {
        total: 6,
        ..req(WriteAction::Stat, "statted", 0, &[])
    };
    let (responses, error) = write_all(
        &daemon,
        NS,
        vec![stat, req(WriteAction::Write, "", 0, b"abcdef")],
    )
    .await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(responses.len(), 3, "STAT + WRITE + the final once more");
    assert_eq!(responses[0].total, 6);
    assert!(responses[0].started_at.is_some());
    assert_eq!(responses[1].action, WriteAction::Write as i32);
    assert_eq!(responses[1].total, 6, "total persists after a STAT");
    assert_eq!(responses[1].started_at, responses[0].started_at);
    // Half-closed without COMMIT: the ingest stays, resumable.
    assert_eq!(statuses(&daemon, NS).await, [("statted".to_owned(), 6)]);
}

#[tokio::test]
async fn offsets_must_match_and_offset_zero_truncates() {
    let daemon = Daemon::start_without_gc().await;
    let (responses, error) = write_all(
        &daemon,
        NS,
        vec![
            req(WriteAction::Write, "offsets", 0, b"abc"),
            req(WriteAction::Write, "", 7, b"zzz"),
        ],
    )
    .await;
    assert_eq!(responses.len(), 1);
    let error = error.expect("bad offset refused");
    assert_eq!(error.code(), Code::OutOfRange);
    assert_eq!(error.message(), "write @7 must occur at current offset 3");
    assert_eq!(statuses(&daemon, NS).await, [("offsets".to_owned(), 3)]);

    // Resume at the right offset, then a COMMIT with offset 0 starts over.
    let data = b"twenty-one bytes long";
    let (responses, error) = write_all(
        &daemon,
        NS,
        vec![
            req(WriteAction::Write, "offsets", 3, b"defgh"),
            WriteContentRequest {
                data: data.to_vec().into(),
                ..commit("", 0, 0, "")
            },
        ],
    )
    .await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(responses[0].offset, 8);
    assert_eq!(responses[1].offset, 21);
    assert_eq!(responses[1].digest, sha256(data));
    assert_eq!(info_code(&daemon, NS, &sha256(data)).await, Code::Ok);
}

#[tokio::test]
async fn a_single_commit_message_can_carry_everything() {
    let daemon = Daemon::start_without_gc().await;
    let data = b"one message";
    let message = WriteContentRequest {
        data: data.to_vec().into(),
        ..commit("single", 0, data.len() as i64, &sha256(data))
    };
    let (responses, error) = write_all(&daemon, NS, vec![message]).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(responses.len(), 2);
    assert_eq!(info_code(&daemon, NS, &sha256(data)).await, Code::Ok);
}

#[tokio::test]
async fn failed_commits_keep_the_ingest_until_abort() {
    let daemon = Daemon::start_without_gc().await;
    let (_, error) = write_all(
        &daemon,
        NS,
        vec![
            req(WriteAction::Write, "sized", 0, b"abc"),
            commit("", 3, 5, ""),
        ],
    )
    .await;
    let error = error.expect("size mismatch");
    assert_eq!(error.code(), Code::FailedPrecondition);
    assert_eq!(
        error.message(),
        "\"sized\" failed size validation: 3 != 5: failed precondition"
    );

    let wrong = sha256(b"xyz");
    let (_, error) = write_all(&daemon, NS, vec![commit("sized", 3, 0, &wrong)]).await;
    let error = error.expect("digest mismatch");
    assert_eq!(error.code(), Code::FailedPrecondition);
    assert_eq!(
        error.message(),
        format!(
            "unexpected commit digest {}, expected {wrong}: failed precondition",
            sha256(b"abc")
        )
    );
    assert_eq!(statuses(&daemon, NS).await, [("sized".to_owned(), 3)]);

    let status = client(&daemon)
        .status(namespaced(
            StatusRequest {
                r#ref: "sized".into(),
            },
            NS,
        ))
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap();
    assert_eq!((status.r#ref.as_str(), status.offset), ("sized", 3));

    client(&daemon)
        .abort(namespaced(
            AbortRequest {
                r#ref: "sized".into(),
            },
            NS,
        ))
        .await
        .unwrap();
    assert!(statuses(&daemon, NS).await.is_empty());
    let err = client(&daemon)
        .status(namespaced(
            StatusRequest {
                r#ref: "sized".into(),
            },
            NS,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn committing_existing_content_is_already_exists() {
    let daemon = Daemon::start_without_gc().await;
    let digest = ingest(&daemon, NS, "first", b"exists").await;

    // Named on the first message: refused when the writer opens.
    let (responses, error) = write_all(&daemon, NS, vec![commit("again", 0, 0, &digest)]).await;
    assert!(responses.is_empty());
    let error = error.expect("already exists");
    assert_eq!(error.code(), Code::AlreadyExists);
    assert_eq!(error.message(), format!("content {digest}: already exists"));

    // Named later: the ingest is aborted.
    let (responses, error) = write_all(
        &daemon,
        NS,
        vec![
            req(WriteAction::Write, "later", 0, b"exi"),
            WriteContentRequest {
                expected: digest.clone(),
                ..req(WriteAction::Write, "", 3, b"sts")
            },
        ],
    )
    .await;
    assert_eq!(responses.len(), 1);
    let error = error.expect("already exists");
    assert_eq!(error.code(), Code::AlreadyExists);
    assert_eq!(
        error.message(),
        format!("blob with expected digest {digest} exists")
    );
    assert!(statuses(&daemon, NS).await.is_empty(), "ingest aborted");
}

#[tokio::test]
async fn a_second_stream_on_an_open_ref_is_unavailable() {
    let daemon = Daemon::start_without_gc().await;
    let (mut first, _) =
        Session::open(&daemon, NS, req(WriteAction::Write, "busy", 0, b"ab")).await;
    let (responses, error) =
        write_all(&daemon, NS, vec![req(WriteAction::Stat, "busy", 0, &[])]).await;
    assert!(responses.is_empty());
    let error = error.expect("locked");
    assert_eq!(error.code(), Code::Unavailable);
    let message = error.message();
    assert!(
        message.starts_with("ref default/") && message.contains("/busy locked for "),
        "{message}"
    );
    assert!(message.ends_with(": unavailable"), "{message}");

    // The same ref in another namespace is another ingest.
    let (_, error) = write_all(
        &daemon,
        "other",
        vec![req(WriteAction::Stat, "busy", 0, &[])],
    )
    .await;
    assert!(error.is_none(), "{error:?}");

    // Once the first stream ends, the ref can be resumed.
    let c = first.send(commit("", 2, 2, "")).await.unwrap().unwrap();
    assert_eq!(c.digest, sha256(b"ab"));
    drop(first);
    let (_, error) = write_all(&daemon, NS, vec![req(WriteAction::Stat, "busy", 0, &[])]).await;
    assert!(error.is_none(), "{error:?}");
}

#[tokio::test]
async fn namespaces_see_only_what_they_committed_and_delete_frees_disk() {
    let daemon = Daemon::start_without_gc().await;
    let data = b"shared between namespaces";
    let digest = ingest(&daemon, "a", "r", data).await;
    assert_eq!(info_code(&daemon, "b", &digest).await, Code::NotFound);
    let read = client(&daemon)
        .read(namespaced(
            ReadContentRequest {
                digest: digest.clone(),
                offset: 0,
                size: 0,
            },
            "b",
        ))
        .await;
    let code = match read {
        Err(s) => s.code(),
        Ok(r) => match r.into_inner().message().await {
            Err(s) => s.code(),
            Ok(_) => Code::Ok,
        },
    };
    assert_eq!(code, Code::NotFound);

    // "b" writes the same bytes: the blob is stored once, now visible in both.
    assert_eq!(ingest(&daemon, "b", "r", data).await, digest);
    assert_eq!(info_code(&daemon, "b", &digest).await, Code::Ok);

    // A namespace holding blobs cannot be deleted.
    let err = daemon
        .namespaces()
        .delete(DeleteNamespaceRequest { name: "a".into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("still has blobs"),
        "{}",
        err.message()
    );

    let delete = |ns: &'static str| {
        let mut c = client(&daemon);
        let digest = digest.clone();
        async move {
            c.delete(namespaced(DeleteContentRequest { digest }, ns))
                .await
        }
    };
    delete("a").await.unwrap();
    assert_eq!(info_code(&daemon, "a", &digest).await, Code::NotFound);
    assert!(blob_path(&daemon, &digest).is_file(), "still held by b");
    assert_eq!(delete("a").await.unwrap_err().code(), Code::NotFound);
    delete("b").await.unwrap();
    assert!(
        !blob_path(&daemon, &digest).exists(),
        "nobody holds it: freed"
    );
    daemon
        .namespaces()
        .delete(DeleteNamespaceRequest { name: "a".into() })
        .await
        .unwrap();
}

#[tokio::test]
async fn malformed_digests_are_invalid_arguments() {
    let daemon = Daemon::start_without_gc().await;
    for digest in [
        "sha256:abc",
        "nonsense",
        "md5:d41d8cd98f00b204e9800998ecf8427e",
    ] {
        let err = client(&daemon)
            .info(namespaced(
                InfoRequest {
                    digest: digest.into(),
                },
                NS,
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{digest}");
        assert_eq!(err.message(), format!("{digest:?} failed validation"));
        let err = client(&daemon)
            .delete(namespaced(
                DeleteContentRequest {
                    digest: digest.into(),
                },
                NS,
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{digest}");
        let (_, error) = write_all(&daemon, NS, vec![commit("bad", 0, 0, digest)]).await;
        assert_eq!(
            error.expect("refused").code(),
            Code::InvalidArgument,
            "{digest}"
        );
    }
}

#[tokio::test]
async fn list_filters_and_update_labels() {
    let daemon = Daemon::start_without_gc().await;
    let small = ingest(&daemon, NS, "small", b"s").await;
    let big = ingest(&daemon, NS, "big", b"bigger").await;
    let updated = client(&daemon)
        .update(namespaced(
            UpdateRequest {
                info: Some(rcontainerd_api::services::content::Info {
                    digest: big.clone(),
                    labels: labels(&[("team", "infra")]),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["labels.team".into()],
                }),
            },
            NS,
        ))
        .await
        .unwrap()
        .into_inner()
        .info
        .unwrap();
    assert_eq!(
        updated.labels.get("team").map(String::as_str),
        Some("infra")
    );

    let list = |filters: &[&str]| {
        let mut c = client(&daemon);
        let filters: Vec<String> = filters.iter().map(|f| f.to_string()).collect();
        async move {
            let mut stream = c
                .list(namespaced(ListContentRequest { filters }, NS))
                .await
                .unwrap()
                .into_inner();
            let mut digests = Vec::new();
            while let Some(batch) = stream.message().await.unwrap() {
                digests.extend(batch.info.into_iter().map(|i| i.digest));
            }
            digests.sort();
            digests
        }
    };
    let mut both = vec![small.clone(), big.clone()];
    both.sort();
    assert_eq!(list(&[]).await, both);
    assert_eq!(list(&["labels.team==infra"]).await, vec![big.clone()]);
    assert_eq!(
        list(&[&format!("digest=={small}")]).await,
        vec![small.clone()]
    );
    assert_eq!(list(&["size==6"]).await, vec![big.clone()]);
    assert!(list(&["labels.team==other"]).await.is_empty());
    assert!(client(&daemon)
        .list_statuses(namespaced(
            ListStatusesRequest {
                filters: vec!["ref==x".into()]
            },
            NS
        ))
        .await
        .unwrap()
        .into_inner()
        .statuses
        .is_empty());
}

#[tokio::test]
async fn read_streams_1mib_messages_within_offset_and_size() {
    let daemon = Daemon::start_without_gc().await;
    let data: Vec<u8> = (0..(5 << 19)).map(|i: u32| (i % 251) as u8).collect(); // 2.5 MiB
    let digest = ingest(&daemon, NS, "big", &data).await;
    let read = |offset: i64, size: i64| {
        let mut c = client(&daemon);
        let digest = digest.clone();
        async move {
            let mut stream = c
                .read(namespaced(
                    ReadContentRequest {
                        digest,
                        offset,
                        size,
                    },
                    NS,
                ))
                .await
                .unwrap()
                .into_inner();
            let mut messages = Vec::new();
            while let Some(m) = stream.message().await.unwrap() {
                messages.push((m.offset, m.data));
            }
            messages
        }
    };
    let all = read(0, 0).await;
    let sizes: Vec<usize> = all.iter().map(|(_, d)| d.len()).collect();
    assert_eq!(sizes, [1 << 20, 1 << 20, 1 << 19]);
    assert_eq!(
        all.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
        [0, 1 << 20, 2 << 20]
    );
    assert_eq!(all.concat_data(), data);

    let window = read(1000, 5000).await;
    assert_eq!(window.len(), 1);
    assert_eq!(window[0].0, 1000);
    assert_eq!(window[0].1, &data[1000..6000]);
    let tail = read((5 << 19) - 10, 100).await;
    assert_eq!(tail.concat_data(), &data[data.len() - 10..]);
}

trait ConcatData {
    fn concat_data(&self) -> Vec<u8>;
}

impl ConcatData for Vec<(i64, tonic::codegen::Bytes)> {
    fn concat_data(&self) -> Vec<u8> {
        self.iter().flat_map(|(_, d)| d.iter().copied()).collect()
    }
}

#[tokio::test]
async fn an_ingest_resumes_after_kill_9() {
    let mut daemon = Daemon::start_without_gc().await;
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let (first, rest) = data.split_at(100_000);
    let (session, _) =
        Session::open(&daemon, NS, req(WriteAction::Write, "resumable", 0, first)).await;
    daemon.kill9();
    drop(session);
    daemon.restart().await.unwrap();

    let status = client(&daemon)
        .status(namespaced(
            StatusRequest {
                r#ref: "resumable".into(),
            },
            NS,
        ))
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap();
    assert_eq!(status.offset, 100_000);

    // A client resumes the way containerd's does: STAT, then write from the offset, commit.
    let (responses, error) = write_all(
        &daemon,
        NS,
        vec![
            req(WriteAction::Stat, "resumable", 0, &[]),
            req(WriteAction::Write, "", 100_000, rest),
            // No expected digest: the daemon must know the digest of what it held before.
            commit("", 300_000, 300_000, ""),
        ],
    )
    .await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(responses[0].offset, 100_000);
    assert_eq!(responses[2].digest, sha256(&data));
    let mut stream = client(&daemon)
        .read(namespaced(
            ReadContentRequest {
                digest: sha256(&data),
                offset: 0,
                size: 0,
            },
            NS,
        ))
        .await
        .unwrap()
        .into_inner();
    let mut read = Vec::new();
    while let Some(m) = stream.message().await.unwrap() {
        read.extend(m.data);
    }
    assert!(read == data, "resumed blob reads back whole");
}

/// Runs a `ctr` with `stdin` fed to it.
fn ctr_with_stdin(
    which: Ctr,
    daemon: &Daemon,
    args: &[&str],
    stdin: &[u8],
) -> std::process::Output {
    let mut child = Command::new(which.path())
        .arg("--address")
        .arg(daemon.socket())
        .args(args)
        .env_remove("CONTAINERD_ADDRESS")
        .env_remove("CONTAINERD_NAMESPACE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running ctr");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn each_ctr_ingests_gets_lists_labels_and_removes_content() {
    let daemon = Daemon::start_without_gc().await;
    for which in Ctr::BOTH {
        // One namespace per ctr, so listings hold only what this ctr made.
        let ns = format!("ctr-{}", format!("{which:?}").to_lowercase());
        let ns = ns.as_str();
        let data = format!("blob written by {which:?} ctr\n").into_bytes();
        let digest = sha256(&data);
        let size = data.len().to_string();
        let out = ctr_with_stdin(
            which,
            &daemon,
            &[
                "-n",
                ns,
                "content",
                "ingest",
                "--expected-size",
                &size,
                "--expected-digest",
                &digest,
                "ctr-ref",
            ],
            &data,
        );
        assert!(
            out.status.success(),
            "{which:?} ingest: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(info_code(&daemon, ns, &digest).await, Code::Ok, "{which:?}");

        let get = daemon.ctr(which, &["-n", ns, "content", "get", &digest]);
        assert_eq!(get.ok().as_bytes(), data, "{which:?}");

        let ls = daemon.ctr(which, &["-n", ns, "content", "ls"]);
        let row = ls
            .ok()
            .lines()
            .find(|l| l.starts_with(&digest))
            .unwrap_or_else(|| panic!("{which:?} ls:\n{}", ls.stdout))
            .to_owned();
        assert!(
            row.split_whitespace().nth(1).unwrap().ends_with('B'),
            "{row}"
        );
        let quiet = daemon.ctr(which, &["-n", ns, "content", "ls", "-q"]);
        assert_eq!(quiet.ok().trim(), digest, "{which:?}");

        daemon
            .ctr(
                which,
                &["-n", ns, "content", "label", &digest, "team=infra"],
            )
            .ok();
        let ls = daemon.ctr(which, &["-n", ns, "content", "ls"]);
        assert!(ls.ok().contains("team=infra"), "{which:?}: {}", ls.stdout);

        // An unfinished ingest shows in `active`.
        let (_, error) = write_all(
            &daemon,
            ns,
            vec![req(WriteAction::Write, "half-done", 0, b"partial")],
        )
        .await;
        assert!(error.is_none(), "{error:?}");
        let active = daemon.ctr(which, &["-n", ns, "content", "active"]);
        assert!(
            active.ok().lines().any(|l| l.starts_with("half-done")),
            "{which:?}: {}",
            active.stdout
        );

        daemon
            .ctr(which, &["-n", ns, "content", "rm", &digest])
            .ok();
        assert_eq!(info_code(&daemon, ns, &digest).await, Code::NotFound);
        let missing = daemon.ctr(which, &["-n", ns, "content", "get", &digest]);
        assert!(
            missing.failed().contains("not found"),
            "{which:?}: {}",
            missing.stderr
        );
    }
    // Both ctrs wrote different blobs; each is gone from disk once removed.
    for which in Ctr::BOTH {
        let data = format!("blob written by {which:?} ctr\n").into_bytes();
        assert!(!blob_path(&daemon, &sha256(&data)).exists(), "{which:?}");
    }
}

#[tokio::test]
async fn debian_ctr_round_trips_a_multi_chunk_blob() {
    let daemon = Daemon::start_without_gc().await;
    let data: Vec<u8> = (0..(5 << 20) + 123u32)
        .map(|i| (i * 31 % 251) as u8)
        .collect();
    let digest = sha256(&data);
    // No expected digest: the daemon names the blob from what it received.
    let out = ctr_with_stdin(Ctr::Debian, &daemon, &["content", "ingest", "big"], &data);
    assert!(
        out.status.success(),
        "ingest: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let get = Command::new(Ctr::Debian.path())
        .arg("--address")
        .arg(daemon.socket())
        .args(["content", "get", &digest])
        .output()
        .unwrap();
    assert!(
        get.status.success(),
        "{}",
        String::from_utf8_lossy(&get.stderr)
    );
    assert!(get.stdout == data, "blob reads back byte for byte");
    assert_eq!(
        std::fs::metadata(blob_path(&daemon, &digest))
            .unwrap()
            .len(),
        data.len() as u64
    );
}

#[tokio::test]
async fn content_calls_need_a_namespace() {
    let daemon = Daemon::start_without_gc().await;
    let err = client(&daemon)
        .info(InfoRequest {
            digest: sha256(b""),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(err.message(), "namespace is required: failed precondition");
    let requests = tonic::codegen::tokio_stream::iter(vec![req(WriteAction::Stat, "r", 0, &[])]);
    let err = client(&daemon).write(requests).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
}

/// content-local's driver exported through ABI generation 1 reports no running digest: the
/// daemon hashes for it (running digests on every WRITE, the committed digest), saves that state,
/// and resumes an ingest from it after `kill -9`.
#[tokio::test]
async fn a_generation_1_content_plugin_is_hashed_by_the_daemon() {
    let plugins = test_plugin_dir_without(
        &["librcontainerd_plugin_content_local.so"],
        &[TestPlugin::ContentV1Pinned],
    );
    let mut daemon = Daemon::start(
        DaemonOptions::new()
            .plugin_dir(plugins.path())
            .disable(rcontainerd_tests::uri::GC),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let content = daemon
        .plugins(&[])
        .await
        .into_iter()
        .find(|p| format!("{}.{}", p.r#type, p.id) == uri::CONTENT)
        .expect("a content plugin");
    assert!(content.init_err.is_none(), "{content:?}");

    // Chunks large enough that the daemon hashes beside the driver's write.
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let (first, rest) = data.split_at(1_000_000);
    let mut requests = Vec::new();
    for (i, chunk) in first.chunks(400_000).enumerate() {
        requests.push(req(WriteAction::Write, "v1", (i * 400_000) as i64, chunk));
    }
    let (mut session, response) = Session::open(&daemon, NS, requests.remove(0)).await;
    assert_eq!(response.digest, sha256(&first[..400_000]));
    let mut offset = 400_000;
    for request in requests {
        offset += request.data.len();
        let response = session.send(request).await.unwrap().unwrap();
        assert_eq!(response.offset, offset as i64);
        assert_eq!(response.digest, sha256(&first[..offset]), "running digest");
    }
    // The stream ends without COMMIT: the daemon saves the digest state as it lets go of the
    // ref (a new stream on it is Unavailable until then). Then the daemon dies.
    drop(session);
    loop {
        let (_, error) = write_all(&daemon, NS, vec![req(WriteAction::Stat, "v1", 0, &[])]).await;
        match error {
            None => break,
            Some(status) if status.code() == Code::Unavailable => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await
            }
            Some(status) => panic!("STAT after the stream ended: {status:?}"),
        }
    }
    daemon.kill9();
    daemon.restart().await.unwrap();

    let (responses, error) = write_all(
        &daemon,
        NS,
        vec![
            req(WriteAction::Stat, "v1", 0, &[]),
            req(WriteAction::Write, "", 1_000_000, rest),
            commit("", 3_000_000, 3_000_000, ""),
        ],
    )
    .await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(responses[0].offset, 1_000_000);
    assert_eq!(responses[0].digest, sha256(first));
    assert_eq!(responses[2].digest, sha256(&data));
    let path = blob_path(&daemon, &sha256(&data));
    assert!(std::fs::read(&path).unwrap() == data, "committed blob");
}

/// Opens a Write stream in `ns` whose first message names `digest` and `total` and carries
/// no data; the status it ends with.
async fn announce(daemon: &Daemon, ns: &str, digest: &str, total: i64) -> Option<Status> {
    let first = WriteContentRequest {
        action: WriteAction::Stat as i32,
        r#ref: format!("announce-{ns}"),
        total,
        expected: digest.to_owned(),
        ..Default::default()
    };
    write_all(daemon, ns, vec![first]).await.1
}

/// containerd's default `content_sharing_policy = "shared"`: a writer that announces a blob
/// another namespace holds gets it linked into its namespace, AlreadyExists, without sending
/// bytes — unless the size it announces differs.
#[tokio::test]
async fn shared_content_is_linked_without_its_bytes() {
    let daemon = Daemon::start_without_gc().await;
    let data = b"held by namespace a";
    let digest = ingest(&daemon, "a", "r", data).await;
    let wrong_size = announce(&daemon, "b", &digest, data.len() as i64 + 1).await;
    assert!(
        wrong_size.is_none(),
        "a mismatched size is written normally: {wrong_size:?}"
    );
    assert_eq!(info_code(&daemon, "b", &digest).await, Code::NotFound);

    let status = announce(&daemon, "c", &digest, data.len() as i64)
        .await
        .expect("the stream ends with AlreadyExists");
    assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
    assert_eq!(
        status.message(),
        format!("content {digest}: already exists")
    );
    assert_eq!(info_code(&daemon, "c", &digest).await, Code::Ok);
    // containerd's ctr takes that as success: nothing on stdin is needed.
    let out = daemon.ctr(
        Ctr::Debian,
        &[
            "-n",
            "d",
            "content",
            "ingest",
            "--expected-digest",
            &digest,
            "--expected-size",
            &data.len().to_string(),
            "ref",
        ],
    );
    out.ok();
    assert_eq!(info_code(&daemon, "d", &digest).await, Code::Ok);
}

/// `content_sharing_policy = "isolated"`: a namespace must send the bytes itself, unless the
/// holder is labelled `containerd.io/namespace.shareable=true`.
#[tokio::test]
async fn isolated_content_must_be_sent_unless_the_holder_shares() {
    let daemon = Daemon::start(
        DaemonOptions::new()
            .disable(rcontainerd_tests::uri::GC)
            .extra_toml(
                "\n[plugins.\"io.containerd.metadata.v1.bolt\"]\ncontent_sharing_policy = \"isolated\"\n",
            ),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let data = b"isolated bytes";
    let digest = ingest(&daemon, "a", "r", data).await;
    assert!(announce(&daemon, "b", &digest, data.len() as i64)
        .await
        .is_none());
    assert_eq!(info_code(&daemon, "b", &digest).await, Code::NotFound);

    daemon
        .ctr(
            Ctr::Debian,
            &[
                "namespaces",
                "label",
                "a",
                "containerd.io/namespace.shareable=true",
            ],
        )
        .ok();
    let status = announce(&daemon, "b", &digest, data.len() as i64).await;
    assert_eq!(status.map(|s| s.code()), Some(Code::AlreadyExists));
    assert_eq!(info_code(&daemon, "b", &digest).await, Code::Ok);
}
