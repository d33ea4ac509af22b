//! The collection gate: every writer of records holds it shared for as long
//! as its operation runs, and a garbage collection holds it exclusively while
//! it marks and sweeps. So a collection never sees half an operation (a
//! snapshot recorded but not yet given to its lease, a child being created
//! on a parent the collection is about to remove), and readers never wait.
//!
//! An operation takes the gate before any other lock it holds (snapshot name
//! locks, ingest and blob locks, namespace locks); otherwise a writer
//! waiting for the gate behind a waiting collection could hold a lock that
//! a gate holder needs.
//!
//! Holds nest: an operation that holds the gate may call code that takes it
//! again (every namespace lock does). A nested hold never waits, even behind
//! a collection that is waiting, or the two would wait for each other; an
//! outermost hold waits behind a waiting collection, so a steady stream of
//! writers cannot starve it.

use std::cell::Cell;

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};

thread_local! {
    /// How many holds this thread has open.
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

#[derive(Debug, Default)]
pub(crate) struct Gate(RwLock<()>);

/// A writer's hold on the gate; a collection waits until it is dropped.
pub struct WriterHold<'a> {
    _guard: RwLockReadGuard<'a, ()>,
}

/// A collection's exclusive hold: no writer runs while it lives.
pub(crate) struct CollectorHold<'a> {
    _guard: RwLockWriteGuard<'a, ()>,
}

impl Gate {
    pub(crate) fn hold(&self) -> WriterHold<'_> {
        let nested = DEPTH.with(|depth| {
            let nested = depth.get() > 0;
            depth.set(depth.get() + 1);
            nested
        });
        let guard = if nested {
            self.0.read_recursive()
        } else {
            self.0.read()
        };
        WriterHold { _guard: guard }
    }

    pub(crate) fn exclude_writers(&self) -> CollectorHold<'_> {
        CollectorHold {
            _guard: self.0.write(),
        }
    }
}

impl Drop for WriterHold<'_> {
    fn drop(&mut self) {
        DEPTH.with(|depth| depth.set(depth.get() - 1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn a_nested_hold_does_not_wait_behind_a_waiting_collection() {
        let gate = Arc::new(Gate::default());
        let outer = gate.hold();
        let collector = {
            let gate = gate.clone();
            std::thread::spawn(move || drop(gate.exclude_writers()))
        };
        // Let the collection start waiting for the outer hold.
        std::thread::sleep(Duration::from_millis(50));
        let inner = gate.hold();
        drop(inner);
        drop(outer);
        collector.join().unwrap();
    }

    #[test]
    fn a_collection_waits_for_writers_and_writers_for_it() {
        let gate = Arc::new(Gate::default());
        let exclusive = gate.exclude_writers();
        let writer = {
            let gate = gate.clone();
            std::thread::spawn(move || {
                let started = std::time::Instant::now();
                drop(gate.hold());
                started.elapsed()
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        drop(exclusive);
        assert!(writer.join().unwrap() >= Duration::from_millis(40));
    }
}
