//! A deadline for checks that can only fail by hanging: a lock that is never released, threads
//! waiting on a barrier one of them never reaches, a child process that never exits. Without one
//! such a test stalls the whole run instead of failing with a message.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::time::Duration;

/// Runs `body` on a thread of its own and returns what it returns; panics naming `what` if it
/// has not finished within `limit`.
///
/// A panic in `body` fails the caller with the body's own message. After a timeout the thread
/// is left behind (a hung thread cannot be stopped); the test binary's exit ends it.
#[track_caller]
pub fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    body: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (done, finished) = mpsc::channel();
    std::thread::Builder::new()
        .name(what.to_owned())
        .spawn(move || {
            let _ = done.send(catch_unwind(AssertUnwindSafe(body)));
        })
        .unwrap_or_else(|err| panic!("{what}: cannot start a thread: {err}"));
    match finished.recv_timeout(limit) {
        Ok(Ok(value)) => value,
        Ok(Err(panic)) => resume_unwind(panic),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: not finished after {limit:?}; it hangs")
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            panic!("{what}: its thread ended without a result")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_value_and_passes_panics_on() {
        assert_eq!(within(Duration::from_secs(10), "quick", || 7), 7);
        let panic = catch_unwind(|| within(Duration::from_secs(10), "boom", || panic!("inner")))
            .unwrap_err();
        assert_eq!(panic.downcast_ref::<&str>(), Some(&"inner"));
    }

    #[test]
    fn a_hang_fails_with_a_message() {
        let panic = catch_unwind(|| {
            within(Duration::from_millis(50), "waiting forever", || {
                std::thread::sleep(Duration::from_secs(3600))
            })
        })
        .unwrap_err();
        let message = panic.downcast_ref::<String>().unwrap();
        assert!(
            message.starts_with("waiting forever: not finished after 50ms"),
            "{message}"
        );
    }
}
