//! Crash points for tests (debug builds only).
//!
//! With `RCONTAINERD_TEST_CRASH_AT=<point>` in its environment, a debug build
//! of the daemon aborts the process at that point, so tests can check what a
//! `kill -9` at the worst moment leaves behind. Points:
//! `snapshot-after-driver-prepare`, `snapshot-after-driver-view`,
//! `snapshot-after-driver-commit`, `snapshot-after-driver-remove`,
//! `gc-after-records` (a collection removed records, nothing on disk yet),
//! `gc-after-first-removal` (it removed one snapshot or blob from disk).
//! Release builds compile the hook away.

/// The environment variable naming the crash point.
pub const CRASH_AT_ENV: &str = "RCONTAINERD_TEST_CRASH_AT";

/// Aborts the process if `point` is the configured crash point.
#[cfg(debug_assertions)]
pub fn crash_point(point: &str) {
    static CRASH_AT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let configured = CRASH_AT.get_or_init(|| std::env::var(CRASH_AT_ENV).ok());
    if configured.as_deref() == Some(point) {
        eprintln!("{CRASH_AT_ENV}={point}: aborting the process");
        std::process::abort();
    }
}

/// Release builds have no crash points.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn crash_point(_point: &str) {}
