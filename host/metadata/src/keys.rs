//! Key layout shared by every column family (see the schema in `lib.rs`).
//!
//! Identifiers never contain a NUL byte, so `namespace \0 …` keeps one
//! namespace's records contiguous and prefix iteration lists exactly one
//! namespace (or one snapshotter inside a namespace).

/// Separates the parts of a key.
pub const SEPARATOR: u8 = 0;

/// The prefix shared by every record of `namespace`: `namespace \0`.
pub fn namespace_prefix(namespace: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(namespace.len() + 1);
    key.extend_from_slice(namespace.as_bytes());
    key.push(SEPARATOR);
    key
}

/// The key of a namespaced object: `namespace \0 name`.
pub fn object_key(namespace: &str, name: &str) -> Vec<u8> {
    let mut key = namespace_prefix(namespace);
    key.extend_from_slice(name.as_bytes());
    key
}

/// The prefix of one snapshotter's snapshots in a namespace: `namespace \0 snapshotter \0`.
pub fn snapshotter_prefix(namespace: &str, snapshotter: &str) -> Vec<u8> {
    let mut key = object_key(namespace, snapshotter);
    key.push(SEPARATOR);
    key
}

/// The key of a snapshot: `namespace \0 snapshotter \0 name`.
pub fn snapshot_key(namespace: &str, snapshotter: &str, name: &str) -> Vec<u8> {
    let mut key = snapshotter_prefix(namespace, snapshotter);
    key.extend_from_slice(name.as_bytes());
    key
}

/// The part of `key` after `prefix`, if `key` starts with it.
pub fn strip_prefix<'k>(key: &'k [u8], prefix: &[u8]) -> Option<&'k [u8]> {
    key.strip_prefix(prefix)
}

/// The part of `rest` before the next separator, and what follows it.
pub fn split_first(rest: &[u8]) -> (&[u8], Option<&[u8]>) {
    match rest.iter().position(|&b| b == SEPARATOR) {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    }
}

/// The smallest key greater than every key starting with `prefix`
/// (an exclusive upper bound), or `None` when no such key exists.
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_nest_namespace_snapshotter_and_name() {
        assert_eq!(object_key("default", "img"), b"default\0img");
        assert_eq!(snapshot_key("ns", "overlayfs", "k"), b"ns\0overlayfs\0k");
        assert!(
            snapshot_key("ns", "native", "a/b").starts_with(&snapshotter_prefix("ns", "native"))
        );
        // "ns" must not claim the records of "ns1".
        assert!(!object_key("ns1", "x").starts_with(&namespace_prefix("ns")));
    }

    #[test]
    fn split_first_stops_at_the_separator() {
        assert_eq!(
            split_first(b"overlayfs\0key\0x"),
            (&b"overlayfs"[..], Some(&b"key\0x"[..]))
        );
        assert_eq!(split_first(b"plain"), (&b"plain"[..], None));
    }

    #[test]
    fn prefix_end_bounds_every_key_with_the_prefix() {
        assert_eq!(prefix_end(b"ns\0"), Some(b"ns\x01".to_vec()));
        assert_eq!(prefix_end(b"a\xff\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff"), None);
        let end = prefix_end(b"ns\0").unwrap();
        assert!(object_key("ns", "\u{10ffff}").as_slice() < end.as_slice());
    }
}
