//! Tar member names made relative to the target root, and what a name means (a file, a
//! whiteout, an opaque marker).
//!
//! Cleaning is lexical, the way containerd cleans a name against "/" before joining it to the
//! root: empty and `.` components go, `..` drops the previous component and stops at the root,
//! a leading `/` is ignored. So `../x`, `a/../../x` and `/x` all name `<root>/x`. Symlinks met
//! on the way are resolved later, by the kernel, inside the root (see `root`).

/// The OCI whiteout prefix: `.wh.<name>` deletes `<name>` from the lower layers.
const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// `.wh..wh..opq` in a directory hides everything the lower layers have in it.
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
/// Other `.wh..wh.` names are aufs bookkeeping (hard-link directories), never real content.
const AUFS_META_PREFIX: &[u8] = b".wh..wh.";

/// Writes the cleaned form of `name` into `out` (components joined by `/`, no leading or
/// trailing slash; empty for the root itself).
pub(super) fn clean_into(name: &[u8], out: &mut Vec<u8>) {
    out.clear();
    for comp in name.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                let keep = out.iter().rposition(|&b| b == b'/').unwrap_or(0);
                out.truncate(keep);
            }
            _ => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(comp);
            }
        }
    }
}

/// Splits a cleaned, non-empty path into its parent (possibly empty: the root) and its last
/// component.
pub(super) fn split(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&[], path),
    }
}

/// What a cleaned member name asks for.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Kind<'a> {
    /// The target root itself (`./`, `/`, `..`).
    Root,
    /// An ordinary entry `name` in directory `parent`.
    Entry { parent: &'a [u8], name: &'a [u8] },
    /// `.wh.<name>` in `parent`: `<name>` is deleted.
    Whiteout { parent: &'a [u8], name: &'a [u8] },
    /// `.wh..wh..opq` in `dir`: the directory is opaque.
    Opaque { dir: &'a [u8] },
    /// An aufs `.wh..wh.*` file, skipped.
    AufsMeta,
    /// `.wh.`, `.wh..` or `.wh...`: a whiteout of nothing a directory can hold.
    BadWhiteout,
}

/// Classifies a cleaned path.
pub(super) fn classify(path: &[u8]) -> Kind<'_> {
    if path.is_empty() {
        return Kind::Root;
    }
    let (parent, name) = split(path);
    if !name.starts_with(WHITEOUT_PREFIX) {
        return Kind::Entry { parent, name };
    }
    if name == OPAQUE_MARKER {
        return Kind::Opaque { dir: parent };
    }
    if name.starts_with(AUFS_META_PREFIX) {
        return Kind::AufsMeta;
    }
    match &name[WHITEOUT_PREFIX.len()..] {
        b"" | b"." | b".." => Kind::BadWhiteout,
        target => Kind::Whiteout {
            parent,
            name: target,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(name: &str) -> String {
        let mut out = Vec::new();
        clean_into(name.as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn cleaning_keeps_names_under_the_root() {
        assert_eq!(clean("a/b/c"), "a/b/c");
        assert_eq!(clean("./a//b/./c/"), "a/b/c");
        assert_eq!(clean("../escape"), "escape");
        assert_eq!(clean("a/../../escape"), "escape");
        assert_eq!(clean("a/b/../../../../c/d"), "c/d");
        assert_eq!(clean("/etc/escape"), "etc/escape");
        assert_eq!(clean("a/b/.."), "a");
        assert_eq!(clean("./"), "");
        assert_eq!(clean("/"), "");
        assert_eq!(clean(".."), "");
        assert_eq!(clean("..."), "...");
        assert_eq!(clean("a/..b"), "a/..b");
    }

    #[test]
    fn split_gives_parent_and_name() {
        assert_eq!(split(b"a"), (&b""[..], &b"a"[..]));
        assert_eq!(split(b"a/b/c"), (&b"a/b"[..], &b"c"[..]));
    }

    #[test]
    fn classify_whiteouts() {
        assert_eq!(classify(b""), Kind::Root);
        assert_eq!(
            classify(b"d/f"),
            Kind::Entry {
                parent: b"d",
                name: b"f"
            }
        );
        assert_eq!(
            classify(b"d/.wh.f"),
            Kind::Whiteout {
                parent: b"d",
                name: b"f"
            }
        );
        assert_eq!(
            classify(b".wh.f"),
            Kind::Whiteout {
                parent: b"",
                name: b"f"
            }
        );
        assert_eq!(classify(b"d/.wh..wh..opq"), Kind::Opaque { dir: b"d" });
        assert_eq!(classify(b"d/.wh..wh.plnk"), Kind::AufsMeta);
        assert_eq!(classify(b"d/.wh."), Kind::BadWhiteout);
        assert_eq!(classify(b"d/.wh.."), Kind::BadWhiteout);
        assert_eq!(
            classify(b"d/.wh...x"),
            Kind::Whiteout {
                parent: b"d",
                name: b"..x"
            }
        );
    }
}
