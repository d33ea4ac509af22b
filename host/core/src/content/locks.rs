//! One open writer per ingest: the lock table of driver ingest refs.
//!
//! A second writer on a ref whose stream is still open is refused with
//! `Unavailable`, worded as containerd words it, because clients (the Go
//! client among them) retry only on that code.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime};

use rcontainerd_pkg::errdefs::{Error, Result};

#[derive(Default)]
pub struct IngestLocks {
    held: Mutex<HashMap<String, (Instant, SystemTime)>>,
}

/// A held ingest lock; dropping it releases the ref.
pub struct IngestLock {
    table: Arc<IngestLocks>,
    driver_ref: String,
}

impl IngestLocks {
    fn table(&self) -> MutexGuard<'_, HashMap<String, (Instant, SystemTime)>> {
        // The map stays consistent across a panic: every change is one insert or remove.
        self.held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Locks `driver_ref`, or says since when someone else holds it.
    pub fn try_lock(self: &Arc<Self>, driver_ref: &str) -> Result<IngestLock> {
        let mut held = self.table();
        if let Some((since, at)) = held.get(driver_ref) {
            return Err(Error::unavailable(format!(
                "ref {driver_ref} locked for {} (since {})",
                rcontainerd_pkg::duration::format(since.elapsed()),
                go_time(*at)
            )));
        }
        held.insert(driver_ref.to_string(), (Instant::now(), SystemTime::now()));
        Ok(IngestLock {
            table: self.clone(),
            driver_ref: driver_ref.to_string(),
        })
    }

    #[cfg(test)]
    pub fn is_locked(&self, driver_ref: &str) -> bool {
        self.table().contains_key(driver_ref)
    }
}

impl Drop for IngestLock {
    fn drop(&mut self) {
        self.table.table().remove(&self.driver_ref);
    }
}

/// A wall-clock time as Go prints a `time.Time` in UTC.
fn go_time(at: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(at)
        .format("%Y-%m-%d %H:%M:%S%.f +0000 UTC")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcontainerd_pkg::errdefs::Kind;

    #[test]
    fn second_lock_is_unavailable_until_the_first_is_dropped() {
        let locks = Arc::new(IngestLocks::default());
        let first = locks.try_lock("default/1/r").unwrap();
        assert!(locks.is_locked("default/1/r"));
        let other = locks.try_lock("default/2/r").unwrap();
        let err = locks.try_lock("default/1/r").err().unwrap();
        assert_eq!(err.kind, Kind::Unavailable);
        assert!(
            err.message.starts_with("ref default/1/r locked for ")
                && err.message.contains("ms (since ")
                && err.message.ends_with(" UTC)"),
            "{}",
            err.message
        );
        drop(first);
        assert!(!locks.is_locked("default/1/r"));
        let _again = locks.try_lock("default/1/r").unwrap();
        drop(other);
        assert!(!locks.is_locked("default/2/r"));
    }
}
