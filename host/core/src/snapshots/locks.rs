//! Per-name locks of one snapshot store.
//!
//! An operation locks the names it reads and writes before its checks and
//! keeps them until its record change is written: the created or removed
//! name exclusively, a parent shared (so children of one parent are prepared
//! concurrently, and the parent cannot be removed meanwhile). Names map to a
//! fixed set of stripes; stripes are always taken in index order, so two
//! operations can never wait for each other in a cycle.

use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

const STRIPES: usize = 1024;

/// How a name is locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Shared,
    Exclusive,
}

pub struct NameLocks {
    stripes: Box<[RwLock<()>]>,
}

/// The stripes held by one operation; released on drop.
pub struct NameGuards<'a> {
    _held: Vec<Held<'a>>,
}

enum Held<'a> {
    Shared(#[allow(dead_code)] RwLockReadGuard<'a, ()>),
    Exclusive(#[allow(dead_code)] RwLockWriteGuard<'a, ()>),
}

impl Default for NameLocks {
    fn default() -> Self {
        NameLocks {
            stripes: (0..STRIPES).map(|_| RwLock::new(())).collect(),
        }
    }
}

impl NameLocks {
    /// Locks `names` of `namespace`; empty names are ignored.
    pub fn lock(&self, namespace: &str, names: &[(&str, Access)]) -> NameGuards<'_> {
        let mut wanted: BTreeMap<usize, Access> = BTreeMap::new();
        for &(name, access) in names {
            if name.is_empty() {
                continue;
            }
            let entry = wanted.entry(self.stripe(namespace, name)).or_insert(access);
            if access == Access::Exclusive {
                *entry = Access::Exclusive;
            }
        }
        // The locks guard no data: a panic while one was held leaves nothing inconsistent.
        let held = wanted
            .into_iter()
            .map(|(index, access)| match access {
                Access::Shared => Held::Shared(
                    self.stripes[index]
                        .read()
                        .unwrap_or_else(|poisoned| poisoned.into_inner()),
                ),
                Access::Exclusive => Held::Exclusive(
                    self.stripes[index]
                        .write()
                        .unwrap_or_else(|poisoned| poisoned.into_inner()),
                ),
            })
            .collect();
        NameGuards { _held: held }
    }

    fn stripe(&self, namespace: &str, name: &str) -> usize {
        let mut hasher = DefaultHasher::new();
        (namespace, name).hash(&mut hasher);
        (hasher.finish() % self.stripes.len() as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn exclusive_waits_for_shared_and_shared_share() {
        let locks = NameLocks::default();
        let first = locks.lock("ns", &[("parent", Access::Shared)]);
        // A second shared holder gets in at once.
        let second = locks.lock("ns", &[("parent", Access::Shared), ("", Access::Exclusive)]);
        let (tx, rx) = mpsc::channel();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let _g = locks.lock("ns", &[("parent", Access::Exclusive)]);
                tx.send(()).unwrap();
            });
            assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
            drop(first);
            drop(second);
            rx.recv_timeout(Duration::from_secs(5)).unwrap();
        });
    }

    #[test]
    fn the_same_name_twice_takes_one_exclusive_lock() {
        let locks = NameLocks::default();
        // Would deadlock if the stripe were taken twice.
        let _g = locks.lock("ns", &[("a", Access::Shared), ("a", Access::Exclusive)]);
        let other = locks.lock("other", &[("a", Access::Exclusive)]);
        drop(other);
    }
}
