//! A TCP proxy on 127.0.0.1 that passes what the upstream server sends at a bounded rate, so
//! that a test can act while a download is under way (kill the daemon mid-layer), and counts those
//! bytes. Requests go upstream as they come.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Bytes passed on at a time.
const CHUNK: usize = 64 * 1024;

/// Accepts connections until dropped. A connection ends when either end closes it (both
/// directions then): the proxy keeps no other handle on its sockets, so that a closed client
/// makes the server see a reset rather than a peer that stopped reading.
pub struct SlowProxy {
    port: u16,
    sent: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SlowProxy {
    /// Proxies to `upstream`, each connection's answers at most `bytes_per_second`.
    pub fn start(upstream: SocketAddr, bytes_per_second: u64) -> SlowProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("its address").port();
        let sent = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (sent, stop) = (sent.clone(), stop.clone());
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    let Ok(server) = TcpStream::connect(upstream) else {
                        continue;
                    };
                    let clones = (client.try_clone(), server.try_clone());
                    let (Ok(client_in), Ok(server_out)) = clones else {
                        continue;
                    };
                    std::thread::spawn(move || copy(client_in, server_out, None, Upstream::To));
                    let sent = sent.clone();
                    std::thread::spawn(move || {
                        let limit = Some((bytes_per_second, &*sent));
                        copy(server, client, limit, Upstream::From)
                    });
                }
            })
        };
        SlowProxy {
            port,
            sent,
            stop,
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Bytes passed from the upstream server to clients so far (headers included).
    pub fn bytes_sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }
}

/// Which end of a [`copy`] is the upstream server.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Upstream {
    From,
    To,
}

/// Copies `from` to `to` until either end closes, paced when `limit` is given; then shuts both
/// down so that the other direction ends too. When the client went away, the server's socket
/// closes with a reset, as the client's own would have: a server blocked writing to a proxy that
/// stopped reading would otherwise wait for ever.
fn copy(
    mut from: TcpStream,
    mut to: TcpStream,
    limit: Option<(u64, &AtomicU64)>,
    upstream: Upstream,
) {
    let start = Instant::now();
    let mut total = 0u64;
    let mut buf = vec![0; CHUNK];
    let client_gone = loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break upstream == Upstream::To,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).is_err() {
            break upstream == Upstream::From;
        }
        total += n as u64;
        if let Some((rate, sent)) = limit {
            sent.fetch_add(n as u64, Ordering::SeqCst);
            let due = Duration::from_secs_f64(total as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    };
    if client_gone {
        let server = if upstream == Upstream::From {
            &from
        } else {
            &to
        };
        // Linger 0: the last close sends RST.
        let _ = rustix::net::sockopt::set_socket_linger(server, Some(Duration::ZERO));
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

impl Drop for SlowProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
