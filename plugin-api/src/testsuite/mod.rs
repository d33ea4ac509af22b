//! Conformance suites a driver runs against itself (feature `testsuite`): directly against its
//! Rust type, which makes failures easy to debug, and through its loaded library, which proves
//! the ABI. They check the interface's model — kinds, names, parents, labels, error classes —
//! through the plain traits only.

pub mod content;
mod deadline;
mod library;
pub mod runtime;
pub mod snapshot;

pub use deadline::within;
pub use library::{built_library, init_loaded, Roots};

/// A failed check: what was expected.
pub type CheckResult = std::result::Result<(), String>;

/// A named check of a driver `D`.
pub type Check<D> = (&'static str, fn(&D) -> CheckResult);

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}
pub(crate) use ensure;

/// Runs `checks`, each against a fresh driver from `make`; panics listing every failure.
pub(crate) fn run<D: ?Sized>(
    suite: &str,
    checks: &[Check<D>],
    make: &mut dyn FnMut() -> std::sync::Arc<D>,
) {
    let failures: Vec<String> = checks
        .iter()
        .filter_map(|(name, check)| {
            let driver = make();
            check(&driver).err().map(|why| format!("  {name}: {why}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{suite} conformance: {} of {} checks failed:\n{}",
        failures.len(),
        checks.len(),
        failures.join("\n")
    );
}
