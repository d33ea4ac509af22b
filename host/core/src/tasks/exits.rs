//! The exits the daemon has heard of, so that `Tasks.Wait` needs no thread per waiter.
//!
//! Every exit reaches the host anyway — the shim forwards `/tasks/exit` over ttrpc, and a
//! runtime driver reports the exits it learns itself (a shim that died). Each one is recorded
//! here under its process; a waiter watches its process's slot. A slot lives until its task is
//! deleted, so a Wait that comes after the exit still gets it.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use rcontainerd_plugin_api::runtime::{Exit, ProcessRef};
use tokio::sync::watch;

#[derive(Default)]
pub struct ExitTable {
    slots: Mutex<HashMap<ProcessRef, watch::Sender<Option<Exit>>>>,
}

/// One waiter's view of its process's slot.
pub struct ExitWaiter {
    receiver: watch::Receiver<Option<Exit>>,
}

impl ExitWaiter {
    /// The process's exit: at once if it is known, else when it arrives. `None` when the task
    /// was deleted meanwhile.
    pub async fn wait(mut self) -> Option<Exit> {
        let exit = self.receiver.wait_for(Option::is_some).await.ok()?;
        *exit
    }

    /// The exit, if it is already known.
    pub fn now(&self) -> Option<Exit> {
        *self.receiver.borrow()
    }
}

impl ExitTable {
    fn lock(&self) -> MutexGuard<'_, HashMap<ProcessRef, watch::Sender<Option<Exit>>>> {
        // Every change is a single insert, remove or send: a panic cannot tear one.
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Watches `process`: taken before asking the runtime for its state, so an exit that
    /// arrives in between is not missed.
    pub fn waiter(&self, process: &ProcessRef) -> ExitWaiter {
        let receiver = self
            .lock()
            .entry(process.clone())
            .or_insert_with(|| watch::channel(None).0)
            .subscribe();
        ExitWaiter { receiver }
    }

    /// Records that `process` exited, waking its waiters.
    pub fn record(&self, process: &ProcessRef, exit: Exit) {
        self.lock()
            .entry(process.clone())
            .or_insert_with(|| watch::channel(None).0)
            .send_replace(Some(exit));
    }

    /// Forgets one process (after DeleteProcess); its waiters get `None`.
    pub fn forget(&self, process: &ProcessRef) {
        self.lock().remove(process);
    }

    /// Forgets a task and all its processes (after Delete).
    pub fn forget_task(&self, namespace: &str, id: &str) {
        self.lock()
            .retain(|p, _| !(p.namespace == namespace && p.id == id));
    }

    /// Slots held (for tests: the table must not grow without tasks).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exit(status: u32) -> Exit {
        Exit {
            pid: 7,
            exit_status: status,
            exited_at: 1,
        }
    }

    #[tokio::test]
    async fn a_waiter_gets_an_exit_recorded_before_or_after_it_came() {
        let table = ExitTable::default();
        let p = ProcessRef::task("ns", "a");
        table.record(&p, exit(3));
        assert_eq!(table.waiter(&p).wait().await, Some(exit(3)));

        let q = ProcessRef::exec("ns", "a", "e1");
        let waiter = table.waiter(&q);
        assert_eq!(waiter.now(), None);
        let pending = tokio::spawn(waiter.wait());
        tokio::task::yield_now().await;
        table.record(&q, exit(9));
        assert_eq!(pending.await.unwrap(), Some(exit(9)));
    }

    #[tokio::test]
    async fn deleting_the_task_releases_waiters_and_slots() {
        let table = ExitTable::default();
        let p = ProcessRef::task("ns", "a");
        let pending = tokio::spawn(table.waiter(&p).wait());
        table.waiter(&ProcessRef::exec("ns", "a", "e"));
        table.waiter(&ProcessRef::task("ns", "b"));
        tokio::task::yield_now().await;
        table.forget_task("ns", "a");
        assert_eq!(pending.await.unwrap(), None);
        assert_eq!(table.len(), 1, "only task b's slot stays");
    }
}
