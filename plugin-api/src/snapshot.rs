//! The snapshotter interface, in containerd's model: active snapshots are writable and become
//! committed (read-only, usable as parents) by `commit`; views are read-only and never
//! committed. The metadata layer above a snapshotter owns names per namespace, so a driver only
//! ever sees opaque keys.

use std::collections::BTreeMap;

use crate::{PluginError, Result};

#[cfg(feature = "storage")]
pub mod storage;

/// Labels attached to a snapshot or blob.
pub type Labels = BTreeMap<String, String>;

/// The kind of a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    View,
    Active,
    Committed,
}

/// A snapshot's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub kind: Kind,
    pub name: String,
    /// The parent's name; empty when the snapshot has none.
    pub parent: String,
    pub labels: Labels,
    /// Unix nanoseconds.
    pub created: i64,
    /// Unix nanoseconds.
    pub updated: i64,
}

/// One mount a client performs to use a snapshot (the mount helper's own type, so what a
/// driver returns can be mounted as it is).
pub use rcontainerd_mount::Mount;

/// Disk usage of a snapshot (what its own layer adds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub size: i64,
    pub inodes: i64,
}

/// A snapshotter driver.
pub trait Snapshotter: Send + Sync {
    /// The record of the snapshot `key` (active, view or committed).
    fn stat(&self, key: &str) -> Result<Info>;
    /// Updates the mutable fields named by `fieldpaths` (`labels`, `labels.<key>`); all
    /// mutable fields when empty. Returns the new record.
    ///
    /// Optional: the daemon keeps snapshot labels in its own metadata and never needs a
    /// driver's. The default answers `NotImplemented`; `storage::MetaStore::update` implements
    /// it for a driver built on the record store.
    fn update(&self, info: Info, fieldpaths: &[String]) -> Result<Info> {
        let _ = fieldpaths;
        Err(PluginError::not_implemented(format_args!(
            "update of snapshot {}",
            info.name
        )))
    }
    fn usage(&self, key: &str) -> Result<Usage>;
    /// The mounts of an active snapshot or view. Called on the daemon's async workers: answer
    /// from memory or local metadata, without waiting on the network or slow I/O.
    fn mounts(&self, key: &str) -> Result<Vec<Mount>>;
    /// Creates an active snapshot `key` on `parent` (empty for none) and returns its mounts.
    fn prepare(&self, key: &str, parent: &str, labels: Labels) -> Result<Vec<Mount>>;
    /// Creates a read-only view `key` of `parent` and returns its mounts.
    fn view(&self, key: &str, parent: &str, labels: Labels) -> Result<Vec<Mount>>;
    /// Turns the active snapshot `key` into the committed snapshot `name`.
    fn commit(&self, name: &str, key: &str, labels: Labels) -> Result<()>;
    /// Removes a snapshot that has no children.
    fn remove(&self, key: &str) -> Result<()>;
    /// Every snapshot's record.
    fn walk(&self) -> Result<Vec<Info>>;
    /// Releases resources no snapshot refers to any more (optional).
    fn cleanup(&self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    /// Leaves `update` to the trait; only what the update check calls answers.
    struct WithoutUpdate;

    impl Snapshotter for WithoutUpdate {
        fn stat(&self, key: &str) -> Result<Info> {
            Ok(Info {
                kind: Kind::Active,
                name: key.to_string(),
                parent: String::new(),
                labels: Labels::new(),
                created: 1,
                updated: 1,
            })
        }
        fn usage(&self, _: &str) -> Result<Usage> {
            unreachable!()
        }
        fn mounts(&self, _: &str) -> Result<Vec<Mount>> {
            unreachable!()
        }
        fn prepare(&self, _: &str, _: &str, _: Labels) -> Result<Vec<Mount>> {
            Ok(Vec::new())
        }
        fn view(&self, _: &str, _: &str, _: Labels) -> Result<Vec<Mount>> {
            unreachable!()
        }
        fn commit(&self, _: &str, _: &str, _: Labels) -> Result<()> {
            unreachable!()
        }
        fn remove(&self, _: &str) -> Result<()> {
            unreachable!()
        }
        fn walk(&self) -> Result<Vec<Info>> {
            unreachable!()
        }
    }

    #[test]
    fn update_defaults_to_not_implemented_and_still_conforms() {
        let s = WithoutUpdate;
        let err = s.update(s.stat("k").unwrap(), &[]).unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotImplemented);
        assert_eq!(err.message, "update of snapshot k: not implemented");
        #[cfg(feature = "testsuite")]
        crate::testsuite::snapshot::update_changes_only_named_labels(&s).unwrap();
    }
}
