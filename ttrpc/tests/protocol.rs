//! Client and server against each other, and each against hand-written frames,
//! over real unix sockets.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use prost::Message;
use rcontainerd_ttrpc::{code, Client, Error, Request, Server, Status, MAX_MESSAGE_LEN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const SERVICE: &str = "rcontainerd.test.v1.Test";

/// `ttrpc.Request` as the wire has it, for hand-written frames.
#[derive(Clone, PartialEq, Message)]
struct WireRequest {
    #[prost(string, tag = "1")]
    service: String,
    #[prost(string, tag = "2")]
    method: String,
    #[prost(bytes = "vec", tag = "3")]
    payload: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
struct WireStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

#[derive(Clone, PartialEq, Message)]
struct WireResponse {
    #[prost(message, optional, tag = "1")]
    status: Option<WireStatus>,
    #[prost(bytes = "vec", tag = "2")]
    payload: Vec<u8>,
}

struct Running {
    _dir: tempfile::TempDir,
    path: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    async fn client(&self) -> Client {
        Client::connect(&format!("unix://{}", self.path.display()))
            .await
            .unwrap()
    }

    async fn raw(&self) -> UnixStream {
        UnixStream::connect(&self.path).await.unwrap()
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("serve returns after shutdown")
            .unwrap()
            .unwrap();
    }
}

/// A server with the test methods: `Echo` (the request, its metadata and
/// timeout), `Sleep` (answers after the milliseconds it is sent), `Big`
/// (5 MiB) and `Panic`.
fn serve() -> Running {
    let mut server = Server::new();
    server
        .register_message(SERVICE, "Echo", |text: String, req: Request| async move {
            let md: Vec<String> = req
                .metadata
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            Ok::<_, Status>(format!(
                "{text}|{}|{:?}",
                md.join(","),
                req.timeout.is_some()
            ))
        })
        .register_message(SERVICE, "Sleep", |ms: u64, _| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok::<_, Status>(ms)
        })
        .register(SERVICE, "Big", |_| async { Ok(vec![7u8; 5 << 20]) })
        .register(SERVICE, "Fail", |_| async {
            Err(Status::not_found("no such thing"))
        })
        .register(SERVICE, "Panic", |_| async { panic!("handler bug") });
    serve_with(server)
}

fn serve_with(server: Server) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ttrpc.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(listener, async {
        let _ = rx.await;
    }));
    Running {
        _dir: dir,
        path,
        stop: Some(tx),
        task,
    }
}

async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .unwrap_or_else(|_| panic!("{what} took over 20 s"))
}

fn frame(len: u32, stream: u32, kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(&[kind, 0]);
    out.extend_from_slice(payload);
    out
}

async fn read_response(stream: &mut UnixStream) -> (u32, WireResponse) {
    let mut header = [0u8; 10];
    stream.read_exact(&mut header).await.unwrap();
    let len = u32::from_be_bytes(header[..4].try_into().unwrap());
    let id = u32::from_be_bytes(header[4..8].try_into().unwrap());
    assert_eq!(header[8], 2, "a response frame");
    let mut payload = vec![0; len as usize];
    stream.read_exact(&mut payload).await.unwrap();
    (id, WireResponse::decode(payload.as_slice()).unwrap())
}

fn request(method: &str, payload: Vec<u8>) -> Vec<u8> {
    WireRequest {
        service: SERVICE.into(),
        method: method.into(),
        payload,
    }
    .encode_to_vec()
}

#[tokio::test]
async fn a_call_carries_payload_metadata_and_timeout() {
    let server = serve();
    let client = server.client().await;
    let md = [("containerd-namespace-ttrpc", "default"), ("k", "v")];
    let out: String = within(
        "echo",
        client.call(
            SERVICE,
            "Echo",
            &"hi".to_string(),
            &md,
            Some(Duration::from_secs(5)),
        ),
    )
    .await
    .unwrap();
    assert_eq!(out, "hi|containerd-namespace-ttrpc=default,k=v|true");
    let out: String = client
        .call(SERVICE, "Echo", &String::new(), &[], None)
        .await
        .unwrap();
    assert_eq!(out, "||false");
    server.stop().await;
}

#[tokio::test]
async fn concurrent_calls_on_one_connection_get_their_own_answers() {
    let server = serve();
    let client = server.client().await;
    // The first sent sleeps longest: answers come back in reverse order.
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..64u64 {
        let client = client.clone();
        calls.spawn(async move {
            let ms = 10 + (64 - i) * 5;
            let got: u64 = client.call(SERVICE, "Sleep", &ms, &[], None).await.unwrap();
            assert_eq!(got, ms);
        });
    }
    within("64 calls", async {
        while let Some(r) = calls.join_next().await {
            r.unwrap();
        }
    })
    .await;
    server.stop().await;
}

#[tokio::test]
async fn unknown_service_and_method_are_unimplemented() {
    let server = serve();
    let client = server.client().await;
    let err = client
        .call::<String, String>(SERVICE, "Nope", &String::new(), &[], None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Status { code: code::UNIMPLEMENTED, message } if message == "method Nope"),
        "{err:?}"
    );
    let err = client
        .call::<String, String>("no.Such", "Echo", &String::new(), &[], None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Status { code: 12, message } if message == "service no.Such"),
        "{err:?}"
    );
    let err = client
        .call::<String, String>(SERVICE, "Fail", &String::new(), &[], None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(code::NOT_FOUND), "{err:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_panicking_handler_answers_internal() {
    let server = serve();
    let client = server.client().await;
    let err = client
        .call::<String, String>(SERVICE, "Panic", &String::new(), &[], None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(code::INTERNAL), "{err:?}");
    // The connection is still good.
    let _: String = client
        .call(SERVICE, "Echo", &String::new(), &[], None)
        .await
        .unwrap();
    server.stop().await;
}

#[tokio::test]
async fn oversized_messages_are_refused_both_ways() {
    let server = serve();
    let client = server.client().await;
    let big = "x".repeat(MAX_MESSAGE_LEN);
    let err = client
        .call::<String, String>(SERVICE, "Echo", &big, &[], None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::FrameTooLarge { len } if len > MAX_MESSAGE_LEN),
        "{err:?}"
    );
    // An answer over the limit becomes RESOURCE_EXHAUSTED on the server.
    let err = client
        .call_raw(SERVICE, "Big", Default::default(), &[], None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(code::RESOURCE_EXHAUSTED), "{err:?}");

    // A peer that sends one anyway: skipped and answered on its stream, and
    // the connection stays in step.
    let mut raw = server.raw().await;
    let len = MAX_MESSAGE_LEN as u32 + 1;
    let mut bytes = frame(len, 5, 1, &[]);
    bytes.resize(bytes.len() + len as usize, 0);
    bytes.extend(frame_of(
        7,
        &request("Echo", "after".to_string().encode_to_vec()),
    ));
    raw.write_all(&bytes).await.unwrap();
    let (id, resp) = within("oversize answer", read_response(&mut raw)).await;
    assert_eq!(id, 5);
    assert_eq!(resp.status.unwrap().code, code::RESOURCE_EXHAUSTED);
    let (id, resp) = within("next answer", read_response(&mut raw)).await;
    assert_eq!(id, 7);
    assert_eq!(resp.status.unwrap_or_default().code, code::OK);
    assert_eq!(
        String::decode(resp.payload.as_slice()).unwrap(),
        "after||false"
    );
    server.stop().await;
}

fn frame_of(stream: u32, payload: &[u8]) -> Vec<u8> {
    frame(payload.len() as u32, stream, 1, payload)
}

#[tokio::test]
async fn malformed_requests_are_answered_and_truncated_frames_close() {
    let server = serve();
    let mut raw = server.raw().await;
    // Not a protobuf message: field 1 claims more bytes than there are.
    raw.write_all(&frame_of(1, &[0x0a, 0x50, 1])).await.unwrap();
    let (id, resp) = within("garbage answer", read_response(&mut raw)).await;
    assert_eq!(id, 1);
    let status = resp.status.unwrap();
    assert_eq!(status.code, code::INVALID_ARGUMENT, "{status:?}");
    // An even (server-side) stream id.
    raw.write_all(&frame_of(2, &request("Echo", vec![])))
        .await
        .unwrap();
    let (id, resp) = within("even id answer", read_response(&mut raw)).await;
    assert_eq!(id, 2);
    assert_eq!(resp.status.unwrap().code, code::INVALID_ARGUMENT);
    // A frame of an unknown type is ignored; the next request is served.
    raw.write_all(&frame(3, 3, 9, b"abc")).await.unwrap();
    raw.write_all(&frame_of(5, &request("Echo", vec![])))
        .await
        .unwrap();
    let (id, _) = within("after unknown type", read_response(&mut raw)).await;
    assert_eq!(id, 5);
    // A frame cut short by the peer closing: the server closes the connection.
    let mut cut = frame_of(7, &request("Echo", vec![]));
    cut.truncate(cut.len() - 2);
    raw.write_all(&cut).await.unwrap();
    raw.shutdown().await.unwrap();
    let mut rest = Vec::new();
    within("close", raw.read_to_end(&mut rest)).await.unwrap();
    assert!(rest.is_empty(), "no answer to a truncated frame");
    // The server is fine for others.
    let client = server.client().await;
    let _: String = client
        .call(SERVICE, "Echo", &String::new(), &[], None)
        .await
        .unwrap();
    server.stop().await;
}

#[tokio::test]
async fn a_timed_out_call_leaves_the_connection_usable() {
    let server = serve();
    let client = server.client().await;
    let err = client
        .call::<u64, u64>(SERVICE, "Sleep", &500, &[], Some(Duration::from_millis(50)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout), "{err:?}");
    let got: u64 = client.call(SERVICE, "Sleep", &1, &[], None).await.unwrap();
    assert_eq!(got, 1);
    // The late answer to the timed-out call arrives and is dropped.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let got: u64 = client.call(SERVICE, "Sleep", &2, &[], None).await.unwrap();
    assert_eq!(got, 2);
    server.stop().await;
}

#[tokio::test]
async fn calls_in_flight_fail_closed_when_the_peer_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("peer.sock");
    let listener = UnixListener::bind(&path).unwrap();
    // A peer that reads two requests, then hangs up without answering.
    let peer = tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut seen = 0;
        let mut buf = vec![0u8; 64 << 10];
        let mut got = Vec::new();
        while seen < 2 {
            let n = conn.read(&mut buf).await.unwrap();
            got.extend_from_slice(&buf[..n]);
            seen = count_frames(&got);
        }
        got
    });
    let client = Client::connect(path.to_str().unwrap()).await.unwrap();
    let (a, b) = tokio::join!(
        client.call::<u64, u64>(SERVICE, "Sleep", &1, &[], None),
        client.call::<u64, u64>(SERVICE, "Sleep", &2, &[], None),
    );
    assert!(matches!(a, Err(Error::Closed)), "{a:?}");
    assert!(matches!(b, Err(Error::Closed)), "{b:?}");
    within("closed()", client.closed()).await;
    assert!(client.is_closed());
    let later = client
        .call::<u64, u64>(SERVICE, "Sleep", &3, &[], None)
        .await;
    assert!(matches!(later, Err(Error::Closed)), "{later:?}");

    // What went on the wire: odd, increasing stream ids, flags 0, the request.
    let got = peer.await.unwrap();
    assert_eq!(&got[4..10], &[0, 0, 0, 1, 1, 0]);
    let len = u32::from_be_bytes(got[..4].try_into().unwrap()) as usize;
    let second = &got[10 + len..];
    assert_eq!(&second[4..10], &[0, 0, 0, 3, 1, 0]);
    let req = WireRequest::decode(&got[10..10 + len]).unwrap();
    assert_eq!(
        (req.service.as_str(), req.method.as_str()),
        (SERVICE, "Sleep")
    );
}

fn count_frames(mut bytes: &[u8]) -> usize {
    let mut n = 0;
    while bytes.len() >= 10 {
        let len = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
        if bytes.len() < 10 + len {
            break;
        }
        bytes = &bytes[10 + len..];
        n += 1;
    }
    n
}

#[tokio::test]
async fn shutdown_lets_calls_in_flight_answer() {
    let server = serve();
    let client = server.client().await;
    let call = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .call::<u64, u64>(SERVICE, "Sleep", &300, &[], None)
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.stop().await;
    assert_eq!(call.await.unwrap().unwrap(), 300);
    within("closed()", client.closed()).await;
}

#[tokio::test]
async fn abstract_socket_addresses() {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("rcontainerd-ttrpc-test-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let std = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
    std.set_nonblocking(true).unwrap();
    let listener = UnixListener::from_std(std).unwrap();
    let mut server = Server::new();
    server.register_message(
        SERVICE,
        "Echo",
        |s: String, _| async move { Ok::<_, Status>(s) },
    );
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(listener, async {
        let _ = rx.await;
    }));
    for address in [format!("unix://@{name}"), format!("@{name}")] {
        let client = Client::connect(&address).await.unwrap();
        let out: String = client
            .call(SERVICE, "Echo", &address, &[], None)
            .await
            .unwrap();
        assert_eq!(out, address);
    }
    let err = Client::connect("vsock://3:1024").await.err().unwrap();
    assert!(
        matches!(err, Error::Io(ref e) if e.kind() == std::io::ErrorKind::InvalidInput),
        "{err:?}"
    );
    let _ = tx.send(());
    task.await.unwrap().unwrap();
}
