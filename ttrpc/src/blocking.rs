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
    idle: Mutex<Vec<UnixStream>>,
}

impl Client {
    /// Calls to the server at `path`; no message either way may exceed
    /// `max_len` bytes. Nothing is dialled until the first call.
    pub fn new(path: impl Into<PathBuf>, max_len: usize) -> Self {
        Client {
            path: path.into(),
            max_len,
            idle: Mutex::new(Vec::new()),
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
        payload: Vec<u8>,
        timeout: Option<Duration>,
    ) -> Result<Bytes, Error> {
        let request = proto::Request {
            service: service.to_string(),
            method: method.to_string(),
            payload: payload.into(),
            timeout_nano: timeout.map_or(0, |t| t.as_nanos().min(i64::MAX as u128) as i64),
            metadata: Vec::new(),
        }
        .encode_to_vec();
        if request.len() > self.max_len {
            return Err(Error::FrameTooLarge { len: request.len() });
        }
        let mut conn = match self.lock().pop() {
            Some(conn) => conn,
            None => UnixStream::connect(&self.path)?,
        };
        conn.set_read_timeout(timeout)?;
        conn.set_write_timeout(timeout)?;
        let response = exchange(&mut conn, &request, self.max_len)?;
        // In step again: the connection serves the next call.
        self.lock().push(conn);
        let status = response.status.unwrap_or_default();
        if status.code != code::OK {
            return Err(Error::Status {
                code: status.code,
                message: status.message,
            });
        }
        Ok(response.payload)
    }

    /// Drops the idle connections: the server behind the socket is a new one.
    pub fn forget(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<UnixStream>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Writes one request frame and reads its response frame.
fn exchange(
    conn: &mut UnixStream,
    request: &[u8],
    max_len: usize,
) -> Result<proto::Response, Error> {
    conn.write_all(&frame::encode(STREAM, TYPE_REQUEST, request))
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
    Ok(proto::Response::decode(payload.as_slice())?)
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

/// What answers a call: the method name and the encoded request, to the
/// encoded response or a status.
pub type Handler = dyn Fn(&str, Bytes) -> Result<Vec<u8>, Status> + Send + Sync;

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
        loop {
            let mut header = [0u8; HEADER_LEN];
            if conn.read_exact(&mut header).is_err() {
                return;
            }
            self.in_flight.fetch_add(1, Ordering::SeqCst);
            let answered = self.answer(&mut conn, frame::Header::parse(&header));
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            if answered.is_err() {
                return;
            }
        }
    }

    /// Reads one request's payload and writes its answer. An error ends the
    /// connection.
    fn answer(&self, conn: &mut UnixStream, header: frame::Header) -> io::Result<()> {
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
            self.dispatch(header, &payload)
        };
        let mut bytes = crate::server::response(result).encode_to_vec();
        if bytes.len() > self.max_len {
            let message = format!(
                "response of {} bytes exceeds the limit of {}",
                bytes.len(),
                self.max_len
            );
            bytes = crate::server::response(Err(Status::new(code::RESOURCE_EXHAUSTED, message)))
                .encode_to_vec();
        }
        conn.write_all(&frame::encode(header.stream_id, TYPE_RESPONSE, &bytes))
    }

    fn dispatch(&self, header: frame::Header, payload: &[u8]) -> Result<Vec<u8>, Status> {
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
        (self.handler)(&request.method, request.payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo_server(dir: &std::path::Path) -> (PathBuf, Arc<Server>) {
        let path = dir.join("s.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let handler: Arc<Handler> = Arc::new(|method: &str, payload: Bytes| match method {
            "Echo" => Ok(payload.to_vec()),
            "Sleep" => {
                std::thread::sleep(Duration::from_millis(300));
                Ok(Vec::new())
            }
            "Missing" => Err(Status::not_found("thing x: not found")),
            other => Err(Status::unimplemented(format!("method {other}"))),
        });
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
                .call("test.v1.Echo", "Echo", vec![i; 10], None)
                .unwrap();
            assert_eq!(&got[..], &[i; 10]);
        }
        assert_eq!(client.lock().len(), 1, "one connection, reused");
        let err = client
            .call("test.v1.Echo", "Missing", vec![], None)
            .unwrap_err();
        assert_eq!(err.code(), Some(code::NOT_FOUND));
        assert!(err.to_string().contains("thing x: not found"), "{err}");
        let err = client.call("other.v1.S", "Echo", vec![], None).unwrap_err();
        assert_eq!(err.code(), Some(code::UNIMPLEMENTED));
        // Still in step after the errors.
        assert_eq!(
            &client.call("test.v1.Echo", "Echo", vec![7], None).unwrap()[..],
            &[7]
        );
    }

    #[test]
    fn oversized_messages_are_refused_both_ways_and_the_connection_stays_usable() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _server) = echo_server(dir.path());
        let small = Client::new(&path, 1024);
        assert!(matches!(
            small.call("test.v1.Echo", "Echo", vec![0; 2000], None),
            Err(Error::FrameTooLarge { .. })
        ));
        // A client with a larger limit: the server skips the request and says why.
        let large = Client::new(&path, 1 << 20);
        let err = large
            .call("test.v1.Echo", "Echo", vec![0; 2000], None)
            .unwrap_err();
        assert_eq!(err.code(), Some(code::RESOURCE_EXHAUSTED), "{err}");
        assert_eq!(
            &large.call("test.v1.Echo", "Echo", vec![1], None).unwrap()[..],
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
                vec![],
                Some(Duration::from_millis(50)),
            )
            .unwrap_err();
        assert!(matches!(err, Error::Timeout), "{err:?}");
        assert!(client.lock().is_empty());
        assert_eq!(
            &client.call("test.v1.Echo", "Echo", vec![2], None).unwrap()[..],
            &[2]
        );
    }

    #[test]
    fn a_gone_server_fails_closed_or_io() {
        let dir = tempfile::tempdir().unwrap();
        let client = Client::new(dir.path().join("none.sock"), 1024);
        let err = client
            .call("test.v1.Echo", "Echo", vec![], None)
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
        let call = std::thread::spawn(move || calling.call("test.v1.Echo", "Sleep", vec![], None));
        std::thread::sleep(Duration::from_millis(100));
        assert!(server.stop(Duration::from_secs(5)));
        assert!(call.join().unwrap().is_ok(), "the call in flight finished");
        let err = client
            .call("test.v1.Echo", "Echo", vec![], None)
            .unwrap_err();
        assert_eq!(err.code(), Some(code::UNAVAILABLE), "{err:?}");
    }
}
