//! A key's place in a TOML document, shown the way TOML writes it (`plugins."io.containerd.gc.v1.scheduler".x`).

use std::fmt;

#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyPath(Vec<String>);

impl KeyPath {
    pub fn root() -> Self {
        Self::default()
    }

    pub fn child(&self, key: &str) -> Self {
        let mut segments = self.0.clone();
        segments.push(key.to_owned());
        Self(segments)
    }

    pub fn segments(&self) -> &[String] {
        &self.0
    }

    /// The path one level up; the root's parent is `None`.
    pub fn parent(&self) -> Option<Self> {
        let (_, rest) = self.0.split_last()?;
        Some(Self(rest.to_vec()))
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write_key(f, segment)?;
        }
        Ok(())
    }
}

/// Writes one key bare when TOML allows it, else as a quoted string.
fn write_key(f: &mut fmt::Formatter<'_>, key: &str) -> fmt::Result {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        f.write_str(key)
    } else {
        // TOML basic strings use the same escapes as Rust's Debug for the characters keys contain in practice.
        write!(f, "{key:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_segments_that_need_it() {
        let path = KeyPath::root()
            .child("plugins")
            .child("io.containerd.snapshotter.v1.overlayfs")
            .child("upperdir_label");
        assert_eq!(
            path.to_string(),
            r#"plugins."io.containerd.snapshotter.v1.overlayfs".upperdir_label"#
        );
        assert_eq!(KeyPath::root().child("").to_string(), r#""""#);
        assert_eq!(path.parent().unwrap().segments().len(), 2);
        assert_eq!(KeyPath::root().parent(), None);
    }
}
