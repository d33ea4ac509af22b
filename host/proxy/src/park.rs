//! Runs a future to completion on the calling thread, parking it between
//! wake-ups.
//!
//! A driver call used to be spawned on the proxies' runtime while the caller
//! waited on a channel: one more thread to wake, twice, on every call. Polling
//! on the caller's thread leaves only the connection's own tasks on the
//! runtime (the runtime is entered, so they, the dial and the timers live
//! there).

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

/// Wakes the parked caller.
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `future` on this thread inside `runtime`'s context until it is
/// ready. Cooperative budgeting is off for it: the caller may be a worker of
/// another runtime, whose task budget would never be renewed in this loop.
pub(crate) fn block_on<F: Future>(runtime: &tokio::runtime::Runtime, future: F) -> F::Output {
    let _context = runtime.enter();
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(tokio::task::unconstrained(future));
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        // A wake between the poll and here leaves the token set: no wake is lost.
        thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn waits_for_a_value_sent_from_another_runtime_task_and_a_timer() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        runtime.spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ = tx.send(7);
        });
        let got = block_on(&runtime, async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            rx.await.unwrap()
        });
        assert_eq!(got, 7);
    }
}
