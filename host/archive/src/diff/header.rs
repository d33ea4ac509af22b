//! One tar entry's header, formatted as Go's `archive/tar` does with `FormatPAX` (what
//! containerd asks for): a USTAR header when everything fits, else a PAX extended header
//! (`x`) with the records that do not fit, then the USTAR header with what does.

use std::collections::BTreeMap;
use std::io::{self, Write};

use tar::{Builder, EntryType, Header};

/// USTAR field limits.
const NAME_LEN: usize = 100;
const PREFIX_LEN: usize = 155;
const MAX_ID: u64 = 0o7777777;
const MAX_SIZE: u64 = 0o77777777777;
const MAX_TIME: i64 = 0o77777777777;

/// An entry's metadata, before formatting.
pub(super) struct EntryHeader {
    /// Path in the layer (directories end with `/`).
    pub name: Vec<u8>,
    pub kind: EntryType,
    /// Permission, setuid, setgid and sticky bits.
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Content size (regular files only).
    pub size: u64,
    /// Seconds since the epoch.
    pub mtime: i64,
    /// Symlink target or hard link source.
    pub link: Vec<u8>,
    pub dev_major: u32,
    pub dev_minor: u32,
    /// Extra PAX records (`SCHILY.xattr.*`).
    pub records: BTreeMap<String, Vec<u8>>,
}

impl EntryHeader {
    pub(super) fn new(name: Vec<u8>, kind: EntryType) -> Self {
        EntryHeader {
            name,
            kind,
            mode: 0,
            uid: 0,
            gid: 0,
            size: 0,
            mtime: 0,
            link: Vec::new(),
            dev_major: 0,
            dev_minor: 0,
            records: BTreeMap::new(),
        }
    }

    /// Writes the header block(s), not the content.
    pub(super) fn write<W: Write>(&self, tar: &mut Builder<W>) -> io::Result<()> {
        let mut records = self.records.clone();
        let mut header = Header::new_ustar();
        let ustar = header
            .as_ustar_mut()
            .expect("a new USTAR header has USTAR fields");

        match split_name(&self.name) {
            Some((prefix, name)) => {
                ustar.prefix[..prefix.len()].copy_from_slice(prefix);
                ustar.name[..name.len()].copy_from_slice(name);
            }
            None => {
                records.insert("path".into(), self.name.clone());
                copy_ascii(&mut ustar.name, &self.name);
            }
        }
        if self.link.len() > NAME_LEN || !self.link.is_ascii() {
            records.insert("linkpath".into(), self.link.clone());
        }
        copy_ascii(&mut ustar.linkname, &self.link);

        // Numbers that do not fit in their octal field go in a record, the field stays 0.
        let uid = fit(&mut records, "uid", self.uid, MAX_ID);
        let gid = fit(&mut records, "gid", self.gid, MAX_ID);
        let size = fit(&mut records, "size", self.size, MAX_SIZE);
        let mtime = if (0..=MAX_TIME).contains(&self.mtime) {
            self.mtime as u64
        } else {
            records.insert("mtime".into(), self.mtime.to_string().into_bytes());
            0
        };

        header.set_entry_type(self.kind);
        header.set_mode(self.mode);
        header.set_uid(uid);
        header.set_gid(gid);
        header.set_size(size);
        header.set_mtime(mtime);
        header.set_device_major(self.dev_major)?;
        header.set_device_minor(self.dev_minor)?;
        set_cksum(&mut header);

        if !records.is_empty() {
            write_pax(tar, &self.name, &records)?;
        }
        tar.get_mut().write_all(header.as_bytes())
    }
}

/// The checksum as Go writes it (six octal digits, NUL, space), so headers match containerd's
/// byte for byte.
fn set_cksum(header: &mut Header) {
    let sum = header.as_bytes()[..148]
        .iter()
        .chain(&[b' '; 8])
        .chain(&header.as_bytes()[156..])
        .map(|&b| u32::from(b))
        .sum::<u32>();
    let field = format!("{sum:06o}\0 ");
    header.as_old_mut().cksum.copy_from_slice(field.as_bytes());
}

/// Fits `value` into a USTAR field of at most `max`, or records it under `key`.
fn fit(records: &mut BTreeMap<String, Vec<u8>>, key: &str, value: u64, max: u64) -> u64 {
    if value <= max {
        return value;
    }
    records.insert(key.into(), value.to_string().into_bytes());
    0
}

/// Splits an ASCII name into USTAR (prefix, name) fields, or `None` when it needs a PAX
/// `path` record (Go's rule: split at the last `/` that leaves both parts within bounds).
fn split_name(name: &[u8]) -> Option<(&[u8], &[u8])> {
    if !name.is_ascii() {
        return None;
    }
    if name.len() <= NAME_LEN {
        return Some((&[], name));
    }
    // The prefix cannot end in the name's own trailing slash.
    let mut end = name.len().min(PREFIX_LEN + 1);
    if end == name.len() && name[end - 1] == b'/' {
        end -= 1;
    }
    let slash = name[..end].iter().rposition(|&b| b == b'/')?;
    let suffix = &name[slash + 1..];
    if slash == 0 || suffix.is_empty() || suffix.len() > NAME_LEN || slash > PREFIX_LEN {
        return None;
    }
    Some((&name[..slash], suffix))
}

/// Copies the ASCII bytes of `value` into a USTAR field, truncated to fit (the full value is
/// in a PAX record then).
fn copy_ascii(field: &mut [u8], value: &[u8]) {
    for (slot, byte) in field.iter_mut().zip(value.iter().filter(|b| b.is_ascii())) {
        *slot = *byte;
    }
}

/// Writes a PAX extended header (`x`) for the entry `name`, named `<dir>/PaxHeaders.0/<base>`
/// like Go does, with the records sorted by key.
fn write_pax<W: Write>(
    tar: &mut Builder<W>,
    name: &[u8],
    records: &BTreeMap<String, Vec<u8>>,
) -> io::Result<()> {
    let mut data = Vec::new();
    for (key, value) in records {
        // "<len> <key>=<value>\n", where <len> counts the whole record, itself included.
        let rest = 1 + key.len() + 1 + value.len() + 1;
        let mut len = rest + 1;
        while len != rest + len.to_string().len() {
            len = rest + len.to_string().len();
        }
        write!(data, "{len} {key}=")?;
        data.extend_from_slice(value);
        data.push(b'\n');
    }

    let trimmed = name.strip_suffix(b"/").unwrap_or(name);
    let (dir, base) = match trimmed.iter().rposition(|&b| b == b'/') {
        Some(i) => (&trimmed[..=i], &trimmed[i + 1..]),
        None => (&[][..], trimmed),
    };
    let mut pax_name = dir.to_vec();
    pax_name.extend_from_slice(b"PaxHeaders.0/");
    pax_name.extend_from_slice(base);

    let mut header = Header::new_ustar();
    let ustar = header
        .as_ustar_mut()
        .expect("a new USTAR header has USTAR fields");
    copy_ascii(&mut ustar.name, &pax_name);
    header.set_entry_type(EntryType::XHeader);
    header.set_size(data.len() as u64);
    header.set_mode(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    set_cksum(&mut header);
    tar.append(&header, data.as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_fit_the_name_field() {
        let name = vec![b'a'; 100];
        assert_eq!(split_name(&name), Some((&[][..], &name[..])));
    }

    #[test]
    fn long_names_split_at_the_last_slash_that_fits() {
        let name = format!("{}/{}/{}", "d".repeat(60), "e".repeat(60), "f".repeat(30));
        let (prefix, rest) = split_name(name.as_bytes()).unwrap();
        assert_eq!(
            prefix,
            format!("{}/{}", "d".repeat(60), "e".repeat(60)).as_bytes()
        );
        assert_eq!(rest, "f".repeat(30).as_bytes());
    }

    #[test]
    fn unsplittable_or_non_ascii_names_need_a_record() {
        assert_eq!(split_name("x".repeat(101).as_bytes()), None);
        let long_base = format!("d/{}", "f".repeat(101));
        assert_eq!(split_name(long_base.as_bytes()), None);
        assert_eq!(split_name("é".as_bytes()), None);
    }

    #[test]
    fn pax_record_lengths_count_themselves() {
        let mut tar = Builder::new(Vec::new());
        let mut records = BTreeMap::new();
        // " k=vvvvv\n" is 9 bytes: with "10" it would be 11, so the length is 11.
        records.insert("path".to_string(), b"abcd".to_vec());
        records.insert("k".to_string(), vec![b'v'; 5]);
        write_pax(&mut tar, b"a/b", &records).unwrap();
        let bytes = tar.into_inner().unwrap();
        let data = &bytes[512..];
        assert!(
            data.starts_with(b"11 k=vvvvv\n13 path=abcd\n"),
            "{:?}",
            &data[..30]
        );
        assert_eq!(&bytes[..15], b"a/PaxHeaders.0/");
    }
}
