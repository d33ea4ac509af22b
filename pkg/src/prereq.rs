//! Tests that need something from the machine — root, a btrfs filesystem, containerd's `ctr`, a
//! system library — report its absence through [`missing`], so that one switch decides for every
//! test in the repository whether an absent prerequisite skips the test or fails it.
//!
//! On a developer's machine a test whose prerequisite is missing says so on stderr and passes
//! without checking anything. CI (`.ci/run`) sets [`REQUIRE_ENV`]`=1`, so there the same test
//! fails instead: a green CI run has run every test. `docs/testing.md` lists the prerequisites.
//!
//! ```
//! # fn is_root() -> bool { true }
//! // In a test:
//! if !is_root() {
//!     rcontainerd_pkg::prereq::missing("root (mounting needs it)");
//!     return;
//! }
//! // ... the test's checks
//! ```

/// The environment variable that turns a missing prerequisite into a test failure: set to any
/// value other than empty or `0` (CI sets `1`).
pub const REQUIRE_ENV: &str = "RCONTAINERD_REQUIRE_PREREQS";

/// Whether a missing prerequisite fails the test ([`REQUIRE_ENV`] is set to something other than
/// empty or `0`).
pub fn required() -> bool {
    requires(std::env::var_os(REQUIRE_ENV).as_deref())
}

/// Reports that the calling test cannot run because `what` is missing (say what is missing and,
/// where it helps, what needs it: `"root (overlay mounts need it)"`).
///
/// With [`REQUIRE_ENV`] set, panics with `prerequisite missing: {what}`, failing the test.
/// Otherwise prints `skipping: prerequisite missing: {what}` to stderr and returns: the caller
/// then returns without checking anything.
#[track_caller]
pub fn missing(what: impl std::fmt::Display) {
    report(required(), &what);
}

fn requires(value: Option<&std::ffi::OsStr>) -> bool {
    value.is_some_and(|value| !value.is_empty() && value != "0")
}

#[track_caller]
fn report(required: bool, what: &dyn std::fmt::Display) {
    if required {
        panic!("prerequisite missing: {what} ({REQUIRE_ENV} is set)");
    }
    eprintln!("skipping: prerequisite missing: {what}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_empty_and_zero_skip_anything_else_requires() {
        for off in [None, Some(""), Some("0")] {
            assert!(!requires(off.map(std::ffi::OsStr::new)), "{off:?}");
        }
        for on in ["1", "yes", "true"] {
            assert!(requires(Some(std::ffi::OsStr::new(on))), "{on}");
        }
    }

    #[test]
    fn a_skip_returns_and_a_requirement_panics_naming_what_is_missing() {
        report(false, &"a thing only this test lacks");
        let panic = std::panic::catch_unwind(|| report(true, &"a btrfs filesystem")).unwrap_err();
        let message = panic.downcast_ref::<String>().expect("a formatted message");
        assert_eq!(
            message,
            "prerequisite missing: a btrfs filesystem (RCONTAINERD_REQUIRE_PREREQS is set)"
        );
    }
}
