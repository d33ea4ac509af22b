//! ttrpc on blocking sockets, one call at a time per connection: for a
//! private socket between two processes of ours (an isolated driver's
//! child), where a call should cost one round trip and nothing else.
//!
//! The async [`crate::Client`] multiplexes calls on one connection through
//! a reader task, and the async [`crate::Server`] runs each request in a task
//! of its own: each hand-off between threads is a wake-up, tens of µs on a
//! busy host. Here the calling thread writes its request and reads its own
//! answer on a connection it holds alone (idle connections are pooled), and
//! the server gives each connection a thread that runs the handler inline:
//! two wake-ups per call. The frames are ttrpc's, so either side also
//! speaks to the other's async counterpart.

use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use prost::Message;

use crate::error::{code, Error, Status};
use crate::frame::{self, HEADER_LEN, TYPE_REQUEST, TYPE_RESPONSE};
use crate::proto;

/// Every connection carries one call at a time, always on this stream id.
const STREAM: u32 = 1;

/// A pool of connections to one server socket.
pub struct Client {
    path: PathBuf,
    max_len: usize,
    idle: Arc<Mutex<Pool>>,
}

/// Idle connections, and which server they reach: [`Client::forget`] starts
/// a new generation, so a session released later does not bring a
/// connection to the old server back.
#[derive(Default)]
struct Pool {
    generation: u64,
    conns: Vec<UnixStream>,
}

impl Client {
    /// Calls to the server at `path`; no message either way may exceed
    /// `max_len` bytes. Nothing is dialled until the first call.
    pub fn new(path: impl Into<PathBuf>, max_len: usize) -> Self {
        Client {
            path: path.into(),
            max_len,
            idle: Arc::default(),
        }
    }

    /// Calls `service`/`method` with the encoded request, on this thread;
    /// returns the encoded response. A call gets no answer within `timeout`
    /// fails [`Error::Timeout`] and its connection is dropped (a late answer
    /// must not reach the next call).
    pub fn call(
        &self,
        service: &str,
        method: &str,
        payload: Split<'_>,
        timeout: Option<Duration>,
    ) -> Result<Bytes, Error> {
        let request = encode_request(service, method, payload, timeout, self.max_len)?;
        let (mut conn, generation) = self.take()?;
        let response = exchange(&mut conn, request, self.max_len, timeout)?;
        // In step again: the connection serves the next call.
        give_back(&self.idle, conn, generation);
        answer_of(response)
    }

    /// A connection of its own (an idle one, or a new one) for calls that
    /// keep state on the server between them (see [`Slot`]): the state goes
    /// when the session is dropped (its connection closes), or stays with a
    /// connection [`Session::release`]d once the server holds none.
    pub fn session(&self) -> Result<Session, Error> {
        let (conn, generation) = self.take()?;
        Ok(Session {
            conn,
            max_len: self.max_len,
            pool: self.idle.clone(),
            generation,
        })
    }

    /// Drops the idle connections: the server behind the socket is a new one.
    pub fn forget(&self) {
        let mut pool = lock(&self.idle);
        pool.generation += 1;
        pool.conns.clear();
    }

    /// An idle connection, or a new one; with the pool's generation.
    fn take(&self) -> Result<(UnixStream, u64), Error> {
        let (idle, generation) = {
            let mut pool = lock(&self.idle);
            (pool.conns.pop(), pool.generation)
        };
        let conn = match idle {
            Some(conn) => conn,
            None => connect(&self.path)?,
        };
        Ok((conn, generation))
    }

    #[cfg(test)]
    fn idle_count(&self) -> usize {
        lock(&self.idle).conns.len()
    }
}

fn lock(pool: &Mutex<Pool>) -> std::sync::MutexGuard<'_, Pool> {
    pool.lock().unwrap_or_else(|p| p.into_inner())
}

/// Returns `conn` to the pool, unless the server it reaches was forgotten.
fn give_back(pool: &Mutex<Pool>, conn: UnixStream, generation: u64) {
    let mut pool = lock(pool);
    if pool.generation == generation {
        pool.conns.push(conn);
    }
}

/// A socket buffer large enough for a 1 MiB message and its framing in one
/// write: with the default (~200 KiB) each large message crossed in several
/// wake-ups of each side.
const SOCKET_BUFFER: usize = 4 << 20;

/// A larger send buffer for `conn`, as far as the host allows
/// (`net.core.wmem_max`); a refusal leaves the default.
fn widen(conn: &UnixStream) {
    let _ = nix::sys::socket::setsockopt(conn, nix::sys::socket::sockopt::SndBuf, &SOCKET_BUFFER);
}

fn connect(path: &std::path::Path) -> io::Result<UnixStream> {
    let conn = UnixStream::connect(path)?;
    widen(&conn);
    Ok(conn)
}

/// A connection held for calls whose state the server keeps between them.
pub struct Session {
    conn: UnixStream,
    max_len: usize,
    pool: Arc<Mutex<Pool>>,
    generation: u64,
}

impl Session {
    /// As [`Client::call`], on this session's connection. After an error
    /// other than a status the connection is out of step: drop the session.
    pub fn call(
        &mut self,
        service: &str,
        method: &str,
        payload: Split<'_>,
        timeout: Option<Duration>,
    ) -> Result<Bytes, Error> {
        let request = encode_request(service, method, payload, timeout, self.max_len)?;
        answer_of(exchange(&mut self.conn, request, self.max_len, timeout)?)
    }

    /// Returns the connection to the client's pool: for when the last call
    /// left the server holding no state for it (otherwise drop the session).
    pub fn release(self) {
        give_back(&self.pool, self.conn, self.generation);
    }
}

/// An encoded message in two parts, so that a large bytes field is written
/// to the socket from where it lies instead of being copied into the
/// message: `head` is the message without that field followed by the
/// field's key and length, `tail` the field's bytes. Protobuf lets a field
/// come after the others, so the two read back as one message.
pub struct Split<'a> {
    head: Vec<u8>,
    tail: std::borrow::Cow<'a, [u8]>,
}

impl<'a> Split<'a> {
    /// A message encoded whole.
    pub fn whole(encoded: Vec<u8>) -> Split<'static> {
        Split {
            head: encoded,
            tail: std::borrow::Cow::Borrowed(&[]),
        }
    }

    /// `message` (whose field `tag` is left empty) with `data` as its bytes
    /// field `tag`.
    pub fn with_bytes(
        message: &impl Message,
        tag: u32,
        data: impl Into<std::borrow::Cow<'a, [u8]>>,
    ) -> Split<'a> {
        let data = data.into();
        let mut head = message.encode_to_vec();
        if !data.is_empty() {
            prost::encoding::encode_key(tag, prost::encoding::WireType::LengthDelimited, &mut head);
            prost::encoding::encode_varint(data.len() as u64, &mut head);
        }
        Split { head, tail: data }
    }

    pub fn len(&self) -> usize {
        self.head.len() + self.tail.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// This message as bytes field `tag` of the message `outer` encodes
    /// (which leaves that field empty): the tail stays where it is.
    fn nest(self, outer: &impl Message, tag: u32) -> Split<'a> {
        let mut head = outer.encode_to_vec();
        if !self.is_empty() {
            prost::encoding::encode_key(tag, prost::encoding::WireType::LengthDelimited, &mut head);
            prost::encoding::encode_varint(self.len() as u64, &mut head);
            head.extend_from_slice(&self.head);
        }
        Split {
            head,
            tail: self.tail,
        }
    }

    /// Writes a frame holding this message.
    fn write_frame(&self, conn: &mut UnixStream, stream_id: u32, kind: u8) -> io::Result<()> {
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(&(self.len() as u32).to_be_bytes());
        header.extend_from_slice(&stream_id.to_be_bytes());
        header.push(kind);
        header.push(0);
        let mut parts = [
            io::IoSlice::new(&header),
            io::IoSlice::new(&self.head),
            io::IoSlice::new(&self.tail),
        ];
        let mut parts = &mut parts[..];
        while !parts.is_empty() {
            match conn.write_vectored(parts) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => io::IoSlice::advance_slices(&mut parts, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// The request message of a call, refused if over `max_len`.
fn encode_request<'a>(
    service: &str,
    method: &str,
    payload: Split<'a>,
    timeout: Option<Duration>,
    max_len: usize,
) -> Result<Split<'a>, Error> {
    let outer = proto::Request {
        service: service.to_string(),
        method: method.to_string(),
        payload: Bytes::new(),
        timeout_nano: timeout.map_or(0, |t| t.as_nanos().min(i64::MAX as u128) as i64),
        metadata: Vec::new(),
    };
    let request = payload.nest(&outer, 3);
    if request.len() > max_len {
        return Err(Error::FrameTooLarge { len: request.len() });
    }
    Ok(request)
}

/// The payload of an OK response, or its status as the error.
fn answer_of(response: proto::Response) -> Result<Bytes, Error> {
    let status = response.status.unwrap_or_default();
    if status.code != code::OK {
        return Err(Error::Status {
            code: status.code,
            message: status.message,
        });
    }
    Ok(response.payload)
}

/// Writes one request frame and reads its response frame.
fn exchange(
    conn: &mut UnixStream,
    request: Split<'_>,
    max_len: usize,
    timeout: Option<Duration>,
) -> Result<proto::Response, Error> {
    conn.set_read_timeout(timeout)?;
    conn.set_write_timeout(timeout)?;
    request
        .write_frame(conn, STREAM, TYPE_REQUEST)
        .map_err(call_error)?;
    let mut header = [0u8; HEADER_LEN];
    conn.read_exact(&mut header).map_err(call_error)?;
    let header = frame::Header::parse(&header);
    let len = header.len as usize;
    if header.kind != TYPE_RESPONSE || header.stream_id != STREAM {
        return Err(Error::Io(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "expected the response of stream {STREAM}, got a frame of type {} on stream {}",
                header.kind, header.stream_id
            ),
        )));
    }
    if len > max_len {
        return Err(Error::FrameTooLarge { len });
    }
    let mut payload = vec![0u8; len];
    conn.read_exact(&mut payload).map_err(call_error)?;
    // From `Bytes`, the answer's payload is a view of this buffer, not a copy.
    Ok(proto::Response::decode(Bytes::from(payload))?)
}

/// A failed read or write: the peer gone, the deadline passed, or another
/// I/O error.
fn call_error(e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted => Error::Closed,
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Error::Timeout,
        _ => Error::Io(e),
    }
}

/// What answers a call: the connection's own state (see [`Slot`]), the
/// method name and the encoded request, to the encoded response or a status.
pub type Handler = dyn Fn(&mut Slot, &str, Bytes) -> Result<Split<'static>, Status> + Send + Sync;

/// State a handler keeps on one connection between its calls (a write in
/// progress, say); dropped when the connection ends.
pub type Slot = Option<Box<dyn std::any::Any + Send>>;

/// Serves `service` on a listener, a thread per connection running
/// `handler` inline.
pub struct Server {
    service: String,
    handler: Arc<Handler>,
    max_len: usize,
    stopping: AtomicBool,
    /// Calls being answered now: a stop waits for them.
    in_flight: AtomicUsize,
}

impl Server {
    /// Serves `service` with `handler`; no message either way may exceed
    /// `max_len` bytes (a larger request is answered RESOURCE_EXHAUSTED).
    pub fn new(service: &str, handler: Arc<Handler>, max_len: usize) -> Arc<Server> {
        Arc::new(Server {
            service: service.to_string(),
            handler,
            max_len,
            stopping: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
        })
    }

    /// Accepts connections on `listener` (a blocking one) until [`Server::stop`].
    pub fn serve(self: &Arc<Self>, listener: UnixListener) -> io::Result<()> {
        for conn in listener.incoming() {
            if self.stopping.load(Ordering::SeqCst) {
                return Ok(());
            }
            let conn = match conn {
                Ok(conn) => conn,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            widen(&conn);
            let server = self.clone();
            std::thread::Builder::new()
                .name("ttrpc-conn".into())
                .spawn(move || server.serve_conn(conn))?;
        }
        Ok(())
    }

    /// Stops taking calls and waits up to `drain` for those being answered.
    /// Returns whether none was left. (The accept loop ends at its next
    /// connection; a process stopping need not wait for it.)
    pub fn stop(&self, drain: Duration) -> bool {
        self.stopping.store(true, Ordering::SeqCst);
        let until = std::time::Instant::now() + drain;
        while self.in_flight.load(Ordering::SeqCst) > 0 {
            if std::time::Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }

    fn serve_conn(&self, mut conn: UnixStream) {
        let mut slot: Slot = None;
        loop {
            let mut header = [0u8; HEADER_LEN];
            if conn.read_exact(&mut header).is_err() {
                return;
            }
            self.in_flight.fetch_add(1, Ordering::SeqCst);
            let answered = self.answer(&mut conn, &mut slot, frame::Header::parse(&header));
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            if answered.is_err() {
                return;
            }
        }
    }

    /// Reads one request's payload and writes its answer. An error ends the
    /// connection.
    fn answer(
        &self,
        conn: &mut UnixStream,
        slot: &mut Slot,
        header: frame::Header,
    ) -> io::Result<()> {
        let len = header.len as usize;
        let result = if len > self.max_len {
            io::copy(&mut (&mut *conn).take(len as u64), &mut io::sink())?;
            Err(Status::new(
                code::RESOURCE_EXHAUSTED,
                format!(
                    "message of {len} bytes exceeds the limit of {}",
                    self.max_len
                ),
            ))
        } else {
            let mut payload = vec![0u8; len];
            conn.read_exact(&mut payload)?;
            self.dispatch(slot, header, Bytes::from(payload))
        };
        let mut response = match result {
            Ok(answer) => answer.nest(
                &proto::Response {
                    status: Some(proto::RpcStatus::default()),
                    payload: Bytes::new(),
                },
                2,
            ),
            Err(status) => Split::whole(crate::server::response(Err(status)).encode_to_vec()),
        };
        if response.len() > self.max_len {
            let message = format!(
                "response of {} bytes exceeds the limit of {}",
                response.len(),
                self.max_len
            );
            response = Split::whole(
                crate::server::response(Err(Status::new(code::RESOURCE_EXHAUSTED, message)))
                    .encode_to_vec(),
            );
        }
        response.write_frame(conn, header.stream_id, TYPE_RESPONSE)
    }

    fn dispatch(
        &self,
        slot: &mut Slot,
        header: frame::Header,
        payload: Bytes,
    ) -> Result<Split<'static>, Status> {
        if header.kind != TYPE_REQUEST || header.stream_id.is_multiple_of(2) {
            return Err(Status::invalid_argument(format!(
                "expected a request on an odd stream, got type {} on stream {}",
                header.kind, header.stream_id
            )));
        }
        let request = proto::Request::decode(payload)
            .map_err(|e| Status::invalid_argument(format!("undecodable request: {e}")))?;
        if self.stopping.load(Ordering::SeqCst) {
            return Err(Status::new(code::UNAVAILABLE, "the server is stopping"));
        }
        if request.service != self.service {
            return Err(Status::unimplemented(format!(
                "service {} is not served here",
                request.service
            )));
        }
        (self.handler)(slot, &request.method, request.payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo_server(dir: &std::path::Path) -> (PathBuf, Arc<Server>) {
        let path = dir.join("s.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let handler: Arc<Handler> =
            Arc::new(
                |slot: &mut Slot, method: &str, payload: Bytes| match method {
                    "Echo" => Ok(Split::whole(payload.to_vec())),
                    // Echoes with the payload as a split tail, as bytes field 1 of a message.
                    "EchoSplit" => Ok(Split::with_bytes(&(), 1, payload.to_vec())),
                    // Counts this connection's calls of Count.
                    "Count" => {
                        let n = slot
                            .get_or_insert_with(|| Box::new(0u8))
                            .downcast_mut::<u8>()
                            .unwrap();
                        *n += 1;
                        Ok(Split::whole(vec![*n]))
                    }
                    "Sleep" => {
                        std::thread::sleep(Duration::from_millis(300));
                        Ok(Split::whole(Vec::new()))
                    }
                    "Missing" => Err(Status::not_found("thing x: not found")),
                    other => Err(Status::unimplemented(format!("method {other}"))),
                },
            );
        let server = Server::new("test.v1.Echo", handler, 1024);
        let serving = server.clone();
        std::thread::spawn(move || serving.serve(listener));
        (path, server)
    }

    #[test]
    fn calls_answer_reuse_connections_and_keep_status_codes() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _server) = echo_server(dir.path());
        let client = Client::new(&path, 1024);
        for i in 0..3u8 {
            let got = client
                .call("test.v1.Echo", "Echo", Split::whole(vec![i; 10]), None)
                .unwrap();
            assert_eq!(&got[..], &[i; 10]);
        }
        assert_eq!(client.idle_count(), 1, "one connection, reused");
        let err = client
            .call("test.v1.Echo", "Missing", Split::whole(vec![]), None)
            .unwrap_err();
        assert_eq!(err.code(), Some(code::NOT_FOUND));
        assert!(err.to_string().contains("thing x: not found"), "{err}");
        let err = client
            .call("other.v1.S", "Echo", Split::whole(vec![]), None)
            .unwrap_err();
        assert_eq!(err.code(), Some(code::UNIMPLEMENTED));
        // A split tail arrives whole (field 1 of the answer: key 0x0a, length 3).
        let split = client
            .call(
                "test.v1.Echo",
                "EchoSplit",
                Split::with_bytes(&(), 1, &b"abc"[..]),
                None,
            )
            .unwrap();
        assert_eq!(&split[..], &[0x0a, 5, 0x0a, 3, b'a', b'b', b'c']);
        // Still in step after the errors.
        assert_eq!(
            &client
                .call("test.v1.Echo", "Echo", Split::whole(vec![7]), None)
                .unwrap()[..],
            &[7]
        );
    }

    #[test]
    fn a_session_keeps_its_connection_state_and_pooled_calls_do_not_share_it() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _server) = echo_server(dir.path());
        let client = Client::new(&path, 1024);
        let mut one = client.session().unwrap();
        let mut two = client.session().unwrap();
        assert_eq!(
            &one.call("test.v1.Echo", "Count", Split::whole(vec![]), None)
                .unwrap()[..],
            &[1]
        );
        assert_eq!(
            &one.call("test.v1.Echo", "Count", Split::whole(vec![]), None)
                .unwrap()[..],
            &[2]
        );
        assert_eq!(
            &two.call("test.v1.Echo", "Count", Split::whole(vec![]), None)
                .unwrap()[..],
            &[1]
        );
        drop(one);
        two.release();
        // Two's connection, whose state the server still holds, came back to the pool.
        assert_eq!(client.idle_count(), 1);
        let mut three = client.session().unwrap();
        assert_eq!(
            &three
                .call("test.v1.Echo", "Count", Split::whole(vec![]), None)
                .unwrap()[..],
            &[2]
        );
        three.release();
        client.forget();
        assert_eq!(client.idle_count(), 0);
        let mut three = client.session().unwrap();
        assert_eq!(
            &three
                .call("test.v1.Echo", "Count", Split::whole(vec![]), None)
                .unwrap()[..],
            &[1]
        );
    }

    #[test]
    fn oversized_messages_are_refused_both_ways_and_the_connection_stays_usable() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _server) = echo_server(dir.path());
        let small = Client::new(&path, 1024);
        assert!(matches!(
            small.call("test.v1.Echo", "Echo", Split::whole(vec![0; 2000]), None),
            Err(Error::FrameTooLarge { .. })
        ));
        // A client with a larger limit: the server skips the request and says why.
        let large = Client::new(&path, 1 << 20);
        let err = large
            .call("test.v1.Echo", "Echo", Split::whole(vec![0; 2000]), None)
            .unwrap_err();
        assert_eq!(err.code(), Some(code::RESOURCE_EXHAUSTED), "{err}");
        assert_eq!(
            &large
                .call("test.v1.Echo", "Echo", Split::whole(vec![1]), None)
                .unwrap()[..],
            &[1]
        );
    }

    #[test]
    fn a_call_past_its_timeout_fails_and_drops_its_connection() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _server) = echo_server(dir.path());
        let client = Client::new(&path, 1024);
        let err = client
            .call(
                "test.v1.Echo",
                "Sleep",
                Split::whole(vec![]),
                Some(Duration::from_millis(50)),
            )
            .unwrap_err();
        assert!(matches!(err, Error::Timeout), "{err:?}");
        assert!(client.idle_count() == 0);
        assert_eq!(
            &client
                .call("test.v1.Echo", "Echo", Split::whole(vec![2]), None)
                .unwrap()[..],
            &[2]
        );
    }

    #[test]
    fn a_gone_server_fails_closed_or_io() {
        let dir = tempfile::tempdir().unwrap();
        let client = Client::new(dir.path().join("none.sock"), 1024);
        let err = client
            .call("test.v1.Echo", "Echo", Split::whole(vec![]), None)
            .unwrap_err();
        assert!(
            matches!(err, Error::Io(ref e) if e.kind() == io::ErrorKind::NotFound),
            "{err:?}"
        );
    }

    #[test]
    fn stop_waits_for_calls_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let (path, server) = echo_server(dir.path());
        let client = Arc::new(Client::new(&path, 1024));
        let calling = client.clone();
        let call = std::thread::spawn(move || {
            calling.call("test.v1.Echo", "Sleep", Split::whole(vec![]), None)
        });
        std::thread::sleep(Duration::from_millis(100));
        assert!(server.stop(Duration::from_secs(5)));
        assert!(call.join().unwrap().is_ok(), "the call in flight finished");
        let err = client
            .call("test.v1.Echo", "Echo", Split::whole(vec![]), None)
            .unwrap_err();
        assert_eq!(err.code(), Some(code::UNAVAILABLE), "{err:?}");
    }
}
