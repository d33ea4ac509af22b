//! One open writer per ingest ref, in this process. containerd answers a second writer with
//! `Unavailable` (its Go client retries only on that code), naming how long the ref has been held.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::{Instant, SystemTime},
};

use rcontainerd_plugin_api::{PluginError, Result};

use crate::layout::unix_nanos;

#[derive(Debug)]
struct Holder {
    since: Instant,
    since_wall: SystemTime,
}

/// The refs with an open writer.
#[derive(Debug, Clone, Default)]
pub struct RefLocks {
    held: Arc<Mutex<HashMap<String, Holder>>>,
}

impl RefLocks {
    /// Takes `reference`, or answers `Unavailable` if a writer holds it.
    pub fn acquire(&self, reference: &str) -> Result<RefLock> {
        let mut held = self.table();
        if let Some(holder) = held.get(reference) {
            return Err(locked_error(reference, holder));
        }
        held.insert(
            reference.to_owned(),
            Holder {
                since: Instant::now(),
                since_wall: SystemTime::now(),
            },
        );
        Ok(RefLock {
            locks: self.clone(),
            reference: reference.to_owned(),
            released: false,
        })
    }

    fn table(&self) -> MutexGuard<'_, HashMap<String, Holder>> {
        // The table stays consistent even if a holder panicked: entries are inserted and removed whole.
        self.held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn locked_error(reference: &str, holder: &Holder) -> PluginError {
    PluginError::unavailable(format!(
        "ref {reference} locked for {}ms (since unix {}ns)",
        holder.since.elapsed().as_millis(),
        unix_nanos(holder.since_wall)
    ))
}

/// A held ref; released on [`RefLock::release`] or drop.
#[derive(Debug)]
pub struct RefLock {
    locks: RefLocks,
    reference: String,
    released: bool,
}

impl RefLock {
    pub fn release(&mut self) {
        if !self.released {
            self.released = true;
            self.locks.table().remove(&self.reference);
        }
    }
}

impl Drop for RefLock {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcontainerd_plugin_api::ErrorKind;

    #[test]
    fn a_held_ref_is_unavailable_until_released() {
        let locks = RefLocks::default();
        let mut lock = locks.acquire("default/1/a").unwrap();
        let err = locks.acquire("default/1/a").unwrap_err();
        assert_eq!(err.kind, ErrorKind::Unavailable);
        assert!(
            err.message.starts_with("ref default/1/a locked for "),
            "{err}"
        );
        locks.acquire("default/1/b").unwrap();
        lock.release();
        drop(locks.acquire("default/1/a").unwrap());
        locks.acquire("default/1/a").unwrap();
    }
}
