//! The frame layer: a 10-byte header, then a payload of the length it gives.
//!
//! Header, big-endian: `u32` payload length, `u32` stream id (odd ids are the
//! client's calls; a response reuses its request's id), `u8` type, `u8` flags
//! (0: unary ttrpc has no streams).

use tokio::io::{AsyncRead, AsyncReadExt};

/// The largest payload a frame may carry (Go ttrpc's limit, 4 MiB).
pub const MAX_MESSAGE_LEN: usize = 4 << 20;

pub(crate) const HEADER_LEN: usize = 10;
pub(crate) const TYPE_REQUEST: u8 = 1;
pub(crate) const TYPE_RESPONSE: u8 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub len: u32,
    pub stream_id: u32,
    pub kind: u8,
    pub flags: u8,
}

impl Header {
    pub(crate) fn parse(b: &[u8; HEADER_LEN]) -> Self {
        Header {
            len: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            stream_id: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            kind: b[8],
            flags: b[9],
        }
    }
}

/// What [`read`] found on the connection.
#[derive(Debug)]
pub(crate) enum Frame {
    Message(Header, Vec<u8>),
    /// A frame over [`MAX_MESSAGE_LEN`]: its payload was read and dropped, so
    /// the connection stays in step and the stream can be answered.
    TooLarge(Header),
}

/// Reads one frame. `Ok(None)` is a clean end (end of file before a header);
/// an end inside a frame is an `UnexpectedEof` error.
pub(crate) async fn read<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Option<Frame>> {
    let mut b = [0u8; HEADER_LEN];
    let first = r.read(&mut b).await?;
    if first == 0 {
        return Ok(None);
    }
    r.read_exact(&mut b[first..]).await?;
    let header = Header::parse(&b);
    let len = header.len as usize;
    if len > MAX_MESSAGE_LEN {
        let skipped = tokio::io::copy(&mut r.take(len as u64), &mut tokio::io::sink()).await?;
        if skipped < len as u64 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        return Ok(Some(Frame::TooLarge(header)));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await?;
    Ok(Some(Frame::Message(header, payload)))
}

/// A whole frame, header and payload, ready for one write. The caller has
/// checked the payload against its limit ([`MAX_MESSAGE_LEN`] but for the
/// blocking module's private sockets).
pub(crate) fn encode(stream_id: u32, kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&stream_id.to_be_bytes());
    out.push(kind);
    out.push(0);
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_frame_reads_back_as_written() {
        let bytes = encode(7, TYPE_REQUEST, b"abc");
        assert_eq!(&bytes[..HEADER_LEN], &[0, 0, 0, 3, 0, 0, 0, 7, 1, 0]);
        match read(&mut &bytes[..]).await.unwrap() {
            Some(Frame::Message(h, p)) => {
                assert_eq!((h.len, h.stream_id, h.kind, h.flags), (3, 7, 1, 0));
                assert_eq!(p, b"abc");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn clean_and_truncated_ends() {
        assert!(read(&mut &b""[..]).await.unwrap().is_none());
        let bytes = encode(1, TYPE_REQUEST, b"abcdef");
        for cut in [3, HEADER_LEN, HEADER_LEN + 2] {
            let err = read(&mut &bytes[..cut]).await.unwrap_err();
            assert_eq!(
                err.kind(),
                std::io::ErrorKind::UnexpectedEof,
                "cut at {cut}"
            );
        }
    }

    #[tokio::test]
    async fn an_oversized_frame_is_skipped_whole() {
        let len = MAX_MESSAGE_LEN + 1;
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&(len as u32).to_be_bytes());
        bytes.extend_from_slice(&[0, 0, 0, 5, 1, 0]);
        bytes.resize(HEADER_LEN + len, 0xaa);
        bytes.extend_from_slice(&encode(7, TYPE_REQUEST, b"next"));
        let mut r = &bytes[..];
        assert!(
            matches!(read(&mut r).await.unwrap(), Some(Frame::TooLarge(h)) if h.stream_id == 5)
        );
        assert!(
            matches!(read(&mut r).await.unwrap(), Some(Frame::Message(h, _)) if h.stream_id == 7)
        );
    }
}
