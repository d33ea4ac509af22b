//! systemd's readiness notification (sd_notify(3)) for a `Type=notify` unit: once the gRPC
//! socket serves, the daemon sends `READY=1` to the datagram socket systemd names in
//! `NOTIFY_SOCKET`, and systemd starts the units ordered after it.

use std::ffi::OsString;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An HTTP/2 client's first bytes: the connection preface, then an empty SETTINGS frame.
const H2_HELLO: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0";
/// The frame type of HTTP/2's SETTINGS, a server's first frame.
const H2_SETTINGS: u8 = 0x4;
/// How often to look for the socket before the daemon has bound it.
const CONNECT_RETRY: Duration = Duration::from_millis(20);

/// Where systemd listens for this service's notifications.
pub struct Notifier {
    address: OsString,
}

impl Notifier {
    /// Takes `NOTIFY_SOCKET` out of the environment, so that the shims and runc the daemon
    /// starts do not inherit it (runc would relay a container's own notifications there).
    /// Call it before any thread starts: changing the environment is not thread-safe.
    pub fn take_from_env() -> Option<Notifier> {
        let address = std::env::var_os("NOTIFY_SOCKET")?;
        std::env::remove_var("NOTIFY_SOCKET");
        Some(Notifier { address })
    }

    /// Waits until the gRPC socket serves, then tells systemd the daemon is ready.
    pub async fn ready_when_serving(self, socket: PathBuf) {
        if let Err(e) = serving(&socket).await {
            tracing::warn!(
                "systemd notification: probing {}: {e}; notifying anyway",
                socket.display()
            );
        }
        let state = format!("READY=1\nSTATUS=serving on {}", socket.display());
        match self.send(&state) {
            Ok(()) => tracing::debug!("told systemd the daemon is ready"),
            Err(e) => tracing::warn!("systemd notification to {:?}: {e}", self.address),
        }
    }

    /// Sends one notification (newline-separated `KEY=value` assignments).
    fn send(&self, state: &str) -> io::Result<()> {
        let bytes = self.address.as_bytes();
        // A leading '@' names a socket in the abstract namespace.
        let address = match bytes.first() {
            Some(b'@') => SocketAddr::from_abstract_name(&bytes[1..])?,
            Some(b'/') => SocketAddr::from_pathname(Path::new(&self.address))?,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not a unix socket address",
                ))
            }
        };
        UnixDatagram::unbound()?.send_to_addr(state.as_bytes(), &address)?;
        Ok(())
    }
}

/// Returns once `socket` answers an HTTP/2 handshake. The daemon binds the socket before its
/// plugins initialise (connections then wait in the backlog), but only the running gRPC server
/// accepts them and sends its SETTINGS frame.
async fn serving(socket: &Path) -> io::Result<()> {
    let mut stream = loop {
        match tokio::net::UnixStream::connect(socket).await {
            Ok(stream) => break stream,
            // Not bound yet, or a stale file a previous run left.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
                ) =>
            {
                tokio::time::sleep(CONNECT_RETRY).await
            }
            Err(e) => return Err(e),
        }
    };
    stream.write_all(H2_HELLO).await?;
    let mut header = [0u8; 9];
    stream.read_exact(&mut header).await?;
    if header[3] != H2_SETTINGS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("first frame has type {:#x}, not SETTINGS", header[3]),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(socket: &UnixDatagram) -> String {
        let mut buffer = [0u8; 256];
        let n = socket.recv(&mut buffer).expect("a notification");
        String::from_utf8_lossy(&buffer[..n]).into_owned()
    }

    #[test]
    fn notifies_a_socket_at_a_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let systemd = UnixDatagram::bind(&path).unwrap();
        let notifier = Notifier {
            address: path.into_os_string(),
        };
        notifier.send("READY=1\nSTATUS=x").unwrap();
        assert_eq!(received(&systemd), "READY=1\nSTATUS=x");
    }

    #[test]
    fn notifies_an_abstract_socket() {
        // systemd's own NOTIFY_SOCKET is a path; a container manager's may be abstract.
        let name = format!("rcontainerd-notify-test-{}", std::process::id());
        let address = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let systemd = UnixDatagram::bind_addr(&address).unwrap();
        let notifier = Notifier {
            address: format!("@{name}").into(),
        };
        notifier.send("READY=1").unwrap();
        assert_eq!(received(&systemd), "READY=1");
    }

    #[test]
    fn refuses_an_address_that_is_not_a_unix_socket() {
        let notifier = Notifier {
            address: "vsock:2:1234".into(),
        };
        let error = notifier.send("READY=1").unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    }
}
