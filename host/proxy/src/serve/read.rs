//! A blob served as Content `Read` messages: one for this crate's driver
//! server and for the daemon's own Content service, which answer a Read the
//! same way (containerd's window rules, 1 MiB messages, a bounded buffer).

use rcontainerd_api::services::content::ReadContentResponse;
use rcontainerd_plugin_api::content::Reader;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::BoxStream;
use tonic::Status;

use super::to_status;

/// Bytes per Read response message (containerd's).
pub const READ_CHUNK: usize = 1 << 20;
/// Messages buffered ahead of the client: bounds a Read's memory.
const STREAM_BUFFER: usize = 4;

/// The Read messages of `reader` (a blob of `blob_size` bytes) for a request
/// of `offset` and `size`. They are read on one blocking thread for the whole
/// blob (one hop, not one per message), paced to the client by the channel.
pub fn read_stream(
    reader: Box<dyn Reader>,
    blob_size: i64,
    offset: i64,
    size: i64,
) -> BoxStream<ReadContentResponse> {
    let (start, length) = read_range(blob_size, offset, size);
    let (tx, rx) = mpsc::channel(STREAM_BUFFER);
    tokio::task::spawn_blocking(move || stream_blob(&*reader, start, length, tx));
    Box::pin(ReceiverStream::new(rx))
}

/// containerd's read window: the offset clamped into the blob; a size of 0
/// or one reaching past the end reads to the end.
fn read_range(blob_size: i64, offset: i64, size: i64) -> (u64, u64) {
    let blob_size = blob_size.max(0);
    let start = offset.clamp(0, blob_size);
    let length = if size <= 0 || start.saturating_add(size) > blob_size {
        blob_size - start
    } else {
        size
    };
    (start as u64, length as u64)
}

/// Sends `length` bytes from `start`; each message's buffer is read into
/// once and moved into the message.
fn stream_blob(
    reader: &dyn Reader,
    start: u64,
    length: u64,
    tx: mpsc::Sender<Result<ReadContentResponse, Status>>,
) {
    let end = start + length;
    let mut offset = start;
    while offset < end {
        let want = (end - offset).min(READ_CHUNK as u64) as usize;
        let data = match read_full(reader, offset, want) {
            Ok(data) if data.is_empty() => return,
            Ok(data) => data,
            Err(e) => {
                let _ = tx.blocking_send(Err(to_status(e)));
                return;
            }
        };
        let message = ReadContentResponse {
            offset: offset as i64,
            data: data.into(),
        };
        offset += message.data.len() as u64;
        if tx.blocking_send(Ok(message)).is_err() {
            return; // the client went away
        }
    }
}

/// Up to `want` bytes at `offset`, fewer only at the end of the blob.
fn read_full(
    reader: &dyn Reader,
    offset: u64,
    want: usize,
) -> rcontainerd_plugin_api::Result<Vec<u8>> {
    let mut data = vec![0; want];
    let mut filled = 0;
    while filled < want {
        let n = reader.read_at(offset + filled as u64, &mut data[filled..])?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    data.truncate(filled);
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_range_follows_containerd() {
        assert_eq!(read_range(10, 0, 0), (0, 10));
        assert_eq!(read_range(10, 3, 4), (3, 4));
        assert_eq!(read_range(10, 3, 100), (3, 7));
        assert_eq!(read_range(10, -5, 0), (0, 10));
        assert_eq!(read_range(10, 20, 0), (10, 0));
        assert_eq!(read_range(0, 0, 0), (0, 0));
    }
}
