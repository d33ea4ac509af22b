//! The one identifier validator (containerd's `identifiers` package rules).
//!
//! Namespaces, containers, leases and other ids: 1 to 76 characters of
//! `[A-Za-z0-9]+([._-][A-Za-z0-9]+)*`.

use crate::errdefs::{Error, Result};

pub const MAX_LENGTH: usize = 76;
const PATTERN: &str = "^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$";

/// Checks `s` against containerd's identifier rules.
pub fn validate(s: &str) -> Result<()> {
    if s.is_empty() {
        return Err(Error::invalid_argument("identifier must not be empty"));
    }
    if s.len() > MAX_LENGTH {
        return Err(Error::invalid_argument(format!(
            "identifier {s:?} greater than maximum length ({MAX_LENGTH} characters)"
        )));
    }
    if !is_well_formed(s) {
        return Err(Error::invalid_argument(format!(
            "identifier {s:?} must match {PATTERN}"
        )));
    }
    Ok(())
}

/// Alphanumeric runs joined by single `.`, `_` or `-`.
fn is_well_formed(s: &str) -> bool {
    let mut previous_was_separator = true; // no leading separator
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            previous_was_separator = false;
        } else if matches!(c, '.' | '_' | '-') {
            if previous_was_separator {
                return false;
            }
            previous_was_separator = true;
        } else {
            return false;
        }
    }
    !previous_was_separator
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_containerd_identifiers() {
        for ok in ["default", "k8s.io", "a", "a-b_c.d", "A1", &"x".repeat(76)] {
            assert!(validate(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "-a",
            "a-",
            "a..b",
            "Bad Name!",
            "a/b",
            "é",
            &"x".repeat(77),
        ] {
            let err = validate(bad).unwrap_err();
            assert_eq!(err.kind, crate::errdefs::Kind::InvalidArgument, "{bad}");
        }
    }
}
