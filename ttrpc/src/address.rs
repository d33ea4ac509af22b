//! ttrpc addresses: `unix:///abs/path`, a bare path, or an abstract socket
//! (`unix://@name` or `@name`), as shims print and containerd dials them.

use std::io;
use std::os::linux::net::SocketAddrExt;
use tokio::net::UnixStream;

/// Dials `address`.
pub(crate) async fn connect(address: &str) -> io::Result<UnixStream> {
    let rest = match address.split_once("://") {
        Some(("unix", rest)) => rest,
        Some((scheme, _)) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("ttrpc address {address:?}: unsupported scheme {scheme:?}"),
            ))
        }
        None => address,
    };
    if rest.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("ttrpc address {address:?} names no socket"),
        ));
    }
    match rest.strip_prefix('@') {
        Some(name) => {
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
            // A unix connect does not wait on the peer beyond queueing on its
            // backlog, so the blocking call is brief.
            let std = std::os::unix::net::UnixStream::connect_addr(&addr)?;
            std.set_nonblocking(true)?;
            UnixStream::from_std(std)
        }
        None => UnixStream::connect(rest).await,
    }
}
