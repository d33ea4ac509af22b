//! The metadata of one tar member that apply restores: ownership, mode, times (to the
//! nanosecond when PAX records carry them) and extended attributes (PAX `SCHILY.xattr.*`).

use std::io::{self, Read};

use rustix::fs::{Timespec, Timestamps};

/// PAX record prefix for extended attributes (GNU tar, bsdtar, Go's archive/tar).
const XATTR_PREFIX: &[u8] = b"SCHILY.xattr.";
/// Attributes overlayfs interprets (opaque, redirect, metacopy, origin...). A layer has no
/// business setting them: the OCI way to make a directory opaque is `.wh..wh..opq`, and a
/// forged redirect or metacopy would make a mounted overlay show other files than the layer's.
/// Neither containerd's nor Docker's tar writers emit them.
pub(super) const OVERLAY_XATTR_PREFIX: &[u8] = b"trusted.overlay.";

/// Metadata of the current member; reused from one member to the next.
#[derive(Default)]
pub(super) struct Meta {
    /// Permission bits, setuid/setgid/sticky included.
    pub(super) mode: u32,
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) times: Times,
    /// (name, value); names never start with [`OVERLAY_XATTR_PREFIX`].
    pub(super) xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

#[derive(Clone, Copy, Default)]
pub(super) struct Times {
    pub(super) atime: (i64, i64),
    pub(super) mtime: (i64, i64),
}

impl Times {
    pub(super) fn timestamps(&self) -> Timestamps {
        let ts = |(s, ns): (i64, i64)| Timespec {
            tv_sec: s,
            tv_nsec: ns as _,
        };
        Timestamps {
            last_access: ts(self.atime),
            last_modification: ts(self.mtime),
        }
    }
}

impl Meta {
    /// Reads the metadata of `entry`.
    pub(super) fn read_from<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> io::Result<()> {
        let header = entry.header();
        let old = header.as_old();
        self.mode = numeric(&old.mode)? as u32 & 0o7777;
        // The tar crate has already applied PAX uid/gid records to the header.
        self.uid = id(numeric(&old.uid)?)?;
        self.gid = id(numeric(&old.gid)?)?;
        let mtime = (numeric(&old.mtime)? as i64, 0);
        let mut atime = header
            .as_gnu()
            .and_then(|gnu| gnu.atime().ok())
            .map(|s| (s as i64, 0));
        let mut pax_mtime = None;
        self.xattrs.clear();
        if let Some(records) = entry.pax_extensions()? {
            for record in records {
                let record = record?;
                let key = record.key_bytes();
                if key == b"mtime" {
                    pax_mtime = parse_pax_time(record.value_bytes());
                } else if key == b"atime" {
                    atime = parse_pax_time(record.value_bytes()).or(atime);
                } else if let Some(name) = key.strip_prefix(XATTR_PREFIX) {
                    if !name.is_empty() && !name.starts_with(OVERLAY_XATTR_PREFIX) {
                        self.xattrs
                            .push((name.to_vec(), record.value_bytes().to_vec()));
                    }
                }
            }
        }
        let mtime = pax_mtime.unwrap_or(mtime);
        // containerd sets the later of the access and modification times as the access time
        // (the access time of a USTAR member is absent, i.e. zero).
        self.times = Times {
            atime: atime.map_or(mtime, |a| a.max(mtime)),
            mtime,
        };
        Ok(())
    }
}

/// A numeric header field: octal digits padded with spaces or NULs, or base-256 (high bit of
/// the first byte set) for large values. Unlike the tar crate's accessors, an empty field is 0,
/// as Go's archive/tar (containerd's reader) has it: some layer writers leave fields empty.
pub(super) fn numeric(field: &[u8]) -> io::Result<u64> {
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "invalid numeric field in tar header",
        )
    };
    if let Some(&first) = field.first() {
        if first & 0x80 != 0 {
            if first == 0xff {
                return Err(bad()); // negative
            }
            let mut v: u64 = u64::from(first & 0x7f);
            for &b in &field[1..] {
                v = v.checked_mul(256).ok_or_else(bad)? | u64::from(b);
            }
            return Ok(v);
        }
    }
    let pad = |b: &u8| *b == b' ' || *b == 0;
    let start = field.iter().position(|b| !pad(b)).unwrap_or(field.len());
    let end = field.iter().rposition(|b| !pad(b)).map_or(start, |i| i + 1);
    let digits = &field[start..end];
    if digits.is_empty() {
        return Ok(0);
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !(b'0'..=b'7').contains(&d) {
            return Err(bad());
        }
        v = v.checked_mul(8).ok_or_else(bad)? + u64::from(d - b'0');
    }
    Ok(v)
}

fn id(v: u64) -> io::Result<u32> {
    u32::try_from(v).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "uid or gid over 2^32"))
}

/// Parses a PAX time, `<seconds>[.<fraction>]` with an optional `-`, into (seconds,
/// nanoseconds) with `0 <= nanoseconds < 10^9`. Digits beyond nanoseconds are dropped.
pub(super) fn parse_pax_time(value: &[u8]) -> Option<(i64, i64)> {
    let (negative, value) = match value.strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    let (int, frac) = match value.iter().position(|&b| b == b'.') {
        Some(i) => (&value[..i], &value[i + 1..]),
        None => (value, &[][..]),
    };
    if int.is_empty() || !int.iter().chain(frac).all(u8::is_ascii_digit) {
        return None;
    }
    let secs: i64 = std::str::from_utf8(int).ok()?.parse().ok()?;
    let mut nanos: i64 = 0;
    for i in 0..9 {
        nanos = nanos * 10 + frac.get(i).map_or(0, |d| i64::from(d - b'0'));
    }
    Some(if !negative {
        (secs, nanos)
    } else if nanos == 0 {
        (-secs, 0)
    } else {
        (-secs - 1, 1_000_000_000 - nanos)
    })
}

#[cfg(test)]
mod tests {
    use super::{numeric, parse_pax_time};

    #[test]
    fn numeric_fields() {
        assert_eq!(numeric(b"0000644\0").unwrap(), 0o644);
        assert_eq!(numeric(b"   755 \0").unwrap(), 0o755);
        assert_eq!(numeric(b"\0\0\0\0\0\0\0\0").unwrap(), 0);
        assert_eq!(numeric(b"        ").unwrap(), 0);
        assert_eq!(numeric(&[0x80, 0, 0, 0, 0, 0, 1, 2]).unwrap(), 258);
        assert!(numeric(b"0009\0").is_err());
        assert!(numeric(&[0xff; 8]).is_err());
    }

    #[test]
    fn pax_times() {
        assert_eq!(parse_pax_time(b"1700000000"), Some((1_700_000_000, 0)));
        assert_eq!(
            parse_pax_time(b"1700000000.123456789"),
            Some((1_700_000_000, 123_456_789))
        );
        assert_eq!(parse_pax_time(b"12.5"), Some((12, 500_000_000)));
        assert_eq!(parse_pax_time(b"12.1234567891"), Some((12, 123_456_789)));
        assert_eq!(parse_pax_time(b"-1.25"), Some((-2, 750_000_000)));
        assert_eq!(parse_pax_time(b"-3"), Some((-3, 0)));
        assert_eq!(parse_pax_time(b""), None);
        assert_eq!(parse_pax_time(b".5"), None);
        assert_eq!(parse_pax_time(b"1e9"), None);
    }
}
