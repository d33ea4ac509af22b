//! Gzip decompression with ISA-L's igzip inflate (Debian's libisal), through the C face in
//! `csrc/gunzip.c`. Inflate is the slowest stage of applying a gzip layer (the writing thread
//! waits for it); igzip inflates this machine's layers about a quarter faster than zlib-rs.
//!
//! Read as Go's gzip reader (containerd's) reads a layer: concatenated members are one stream;
//! each member's CRC-32 and size are checked; an empty stream, a stream ending inside a member
//! and bytes after a member that do not start a valid one are errors.

use std::io::{self, BufRead, Read};
use std::ptr::NonNull;

/// `struct rcontainerd_gunzip` (ISA-L's inflate state and the gzip header being parsed), only
/// ever behind a pointer the C side allocated.
#[repr(C)]
struct InflateState {
    _opaque: [u8; 0],
}

extern "C" {
    fn rcontainerd_gunzip_new() -> *mut InflateState;
    fn rcontainerd_gunzip_reset(state: *mut InflateState);
    fn rcontainerd_gunzip_free(state: *mut InflateState);
    fn rcontainerd_gunzip_step(
        state: *mut InflateState,
        input: *const u8,
        in_len: u32,
        in_used: *mut u32,
        out: *mut u8,
        out_len: u32,
        out_made: *mut u32,
        finished: *mut libc::c_int,
    ) -> libc::c_int;
}

/// What ISA-L's negative statuses mean (igzip_lib.h).
fn status_message(status: libc::c_int) -> String {
    let what = match status {
        -1 => "invalid deflate block",
        -2 => "invalid deflate symbol",
        -3 => "invalid lookback distance",
        -4 => "invalid gzip header",
        -5 => "unsupported compression method",
        -6 => "gzip checksum or size mismatch",
        _ => "inflate failed",
    };
    format!("gzip: {what} (igzip status {status})")
}

/// A multi-member gzip stream over `input`, decompressed as it is read.
pub(super) struct Gunzip<R> {
    input: R,
    state: NonNull<InflateState>,
    /// Bytes of the current member were read (so the stream may not end here).
    in_member: bool,
    /// Members completed so far.
    members: u64,
}

impl<R: BufRead> Gunzip<R> {
    pub(super) fn new(input: R) -> io::Result<Self> {
        // SAFETY: no arguments; returns a new heap state or null.
        let state = unsafe { rcontainerd_gunzip_new() };
        let state = NonNull::new(state)
            .ok_or_else(|| io::Error::new(io::ErrorKind::OutOfMemory, "gzip: no inflate state"))?;
        Ok(Gunzip {
            input,
            state,
            in_member: false,
            members: 0,
        })
    }

    pub(super) fn get_mut(&mut self) -> &mut R {
        &mut self.input
    }
}

impl<R> Drop for Gunzip<R> {
    fn drop(&mut self) {
        // SAFETY: the state came from rcontainerd_gunzip_new and is freed only here, once.
        unsafe { rcontainerd_gunzip_free(self.state.as_ptr()) }
    }
}

impl<R: BufRead> Read for Gunzip<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        // ISA-L counts in u32.
        let out_len = out.len().min(u32::MAX as usize) as u32;
        loop {
            let input = self.input.fill_buf()?;
            let at_eof = input.is_empty();
            let in_len = input.len().min(u32::MAX as usize) as u32;
            let (mut used, mut made, mut finished) = (0u32, 0u32, 0);
            // SAFETY: the state is ours and live; `input` is valid for `in_len` bytes and only
            // read, `out` valid for `out_len` bytes; the out-parameters are live locals. ISA-L
            // keeps no pointer into either buffer past the call (the C face sets both anew
            // each time; what it needs of earlier input and output it copies into the state).
            let status = unsafe {
                rcontainerd_gunzip_step(
                    self.state.as_ptr(),
                    input.as_ptr(),
                    in_len,
                    &mut used,
                    out.as_mut_ptr(),
                    out_len,
                    &mut made,
                    &mut finished,
                )
            };
            self.input.consume(used as usize);
            if status < 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    status_message(status),
                ));
            }
            if used > 0 || made > 0 {
                self.in_member = true;
            }
            if finished != 0 {
                self.members += 1;
                self.in_member = false;
                // SAFETY: the state is ours and live.
                unsafe { rcontainerd_gunzip_reset(self.state.as_ptr()) };
            }
            if made > 0 {
                return Ok(made as usize);
            }
            if finished != 0 {
                continue; // the next member, or the end
            }
            if at_eof {
                if self.in_member || self.members == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "gzip: the stream ends inside a member",
                    ));
                }
                return Ok(0);
            }
            if used == 0 {
                // Input offered, none taken, nothing made: it would never move on.
                return Err(io::Error::other("gzip: inflate made no progress"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufReader, Write};

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    /// Mixed text and noise: long matches and literals, several deflate blocks.
    fn sample(len: usize) -> Vec<u8> {
        let mut x = 0x2545_f491_u32;
        (0..len)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                if (i / 4096) % 2 == 0 {
                    b"layer data "[i % 11]
                } else {
                    x as u8
                }
            })
            .collect()
    }

    /// Reads it all with reads of at most `piece` bytes from an input handed over `feed` bytes
    /// at a time.
    fn gunzip(gz: &[u8], feed: usize, piece: usize) -> io::Result<Vec<u8>> {
        let mut d = Gunzip::new(BufReader::with_capacity(feed, gz))?;
        let mut out = Vec::new();
        let mut buf = vec![0; piece];
        loop {
            match d.read(&mut buf)? {
                0 => return Ok(out),
                n => out.extend_from_slice(&buf[..n]),
            }
        }
    }

    #[test]
    fn any_read_and_feed_sizes_give_the_data() {
        let data = sample(3 << 20);
        let gz = gzip(&data);
        for (feed, piece) in [
            (1 << 20, 1 << 20),
            (7, 1 << 20),
            (1 << 20, 3),
            (4096, 100_000),
        ] {
            assert!(gunzip(&gz, feed, piece).unwrap() == data, "{feed}/{piece}");
        }
    }

    #[test]
    fn members_are_one_stream_and_header_fields_are_skipped() {
        let mut named = flate2::GzBuilder::new()
            .filename("layer.tar")
            .comment("a comment")
            .extra(vec![1, 2, 3, 4])
            .write(Vec::new(), flate2::Compression::best());
        named.write_all(b"second").unwrap();
        let mut gz = gzip(b"first ");
        gz.extend(gzip(b""));
        gz.extend(named.finish().unwrap());
        assert_eq!(gunzip(&gz, 5, 2).unwrap(), b"first second");
    }

    #[test]
    fn broken_streams_are_errors() {
        let gz = gzip(&sample(100_000));
        let cases: [(&str, Vec<u8>, io::ErrorKind); 6] = [
            ("empty", Vec::new(), io::ErrorKind::UnexpectedEof),
            (
                "not gzip",
                b"not gzip at all".to_vec(),
                io::ErrorKind::InvalidData,
            ),
            (
                "no trailer",
                gz[..gz.len() - 8].to_vec(),
                io::ErrorKind::UnexpectedEof,
            ),
            (
                "half a header after a member",
                [&gz[..], &gz[..4]].concat(),
                io::ErrorKind::UnexpectedEof,
            ),
            (
                "garbage after a member",
                [&gz[..], b"garbage!!!!!"].concat(),
                io::ErrorKind::InvalidData,
            ),
            (
                "wrong size",
                {
                    let mut bad = gz.clone();
                    let n = bad.len();
                    bad[n - 1] ^= 1;
                    bad
                },
                io::ErrorKind::InvalidData,
            ),
        ];
        for (what, bytes, kind) in cases {
            let err = gunzip(&bytes, 1 << 16, 1 << 16).unwrap_err();
            assert_eq!(err.kind(), kind, "{what}: {err}");
        }
        let mut bad_crc = gz.clone();
        let n = bad_crc.len();
        bad_crc[n - 8] ^= 1;
        let err = gunzip(&bad_crc, 1 << 16, 1 << 16).unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");
    }
}
