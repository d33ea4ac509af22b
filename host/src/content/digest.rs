//! Content digests: `algorithm:hex`, checked the way containerd's clients
//! and services check them before using one.

use sha2::{Digest as _, Sha256};

use crate::errdefs::{Error, Result};

/// Why a digest string is malformed, in containerd's words.
pub fn problem(digest: &str) -> Option<&'static str> {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Some("invalid checksum digest format");
    };
    if algorithm.is_empty() || hex.is_empty() || !is_algorithm_name(algorithm) {
        return Some("invalid checksum digest format");
    }
    let length = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Some("unsupported digest algorithm"),
    };
    if hex.len() != length {
        return Some("invalid checksum digest length");
    }
    if !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Some("invalid checksum digest format");
    }
    None
}

/// Checks a digest a request names; containerd's services answer
/// `InvalidArgument "\"<digest>\" failed validation"`.
pub fn validate(digest: &str) -> Result<()> {
    match problem(digest) {
        None => Ok(()),
        Some(_) => Err(Error::invalid_argument(format!(
            "{digest:?} failed validation"
        ))),
    }
}

/// `[a-z0-9]+([+._-][a-z0-9]+)*`
fn is_algorithm_name(name: &str) -> bool {
    name.split(['+', '.', '_', '-']).all(|part| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

/// The running sha256 of an ingest.
#[derive(Clone, Default)]
pub struct RunningDigest {
    hasher: Sha256,
}

impl RunningDigest {
    pub fn update(&mut self, data: &[u8]) {
        self.hasher.update(data);
    }

    /// The digest of everything so far (`sha256:<hex>`).
    pub fn current(&self) -> String {
        let sum = self.hasher.clone().finalize();
        let mut text = String::with_capacity(7 + 64);
        text.push_str("sha256:");
        for byte in sum {
            text.push_str(&format!("{byte:02x}"));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn accepts_well_formed_digests() {
        assert_eq!(problem(EMPTY), None);
        assert_eq!(problem(&format!("sha512:{}", "0".repeat(128))), None);
        assert!(validate(EMPTY).is_ok());
    }

    #[test]
    fn names_what_is_wrong() {
        for (digest, why) in [
            ("", "invalid checksum digest format"),
            ("sha256", "invalid checksum digest format"),
            ("sha256:", "invalid checksum digest format"),
            ("SHA256:00", "invalid checksum digest format"),
            ("sha256:abc", "invalid checksum digest length"),
            ("md5:d41d8cd98f00b204e9800998ecf8427e", "unsupported digest algorithm"),
        ] {
            assert_eq!(problem(digest), Some(why), "{digest:?}");
        }
        let upper = EMPTY.to_uppercase().replace("SHA256", "sha256");
        assert_eq!(problem(&upper), Some("invalid checksum digest format"));
        let err = validate("sha256:abc").unwrap_err();
        assert_eq!(err.kind, crate::errdefs::Kind::InvalidArgument);
        assert_eq!(
            err.into_status().message(),
            "\"sha256:abc\" failed validation: invalid argument"
        );
    }

    #[test]
    fn running_digest_matches_one_shot_hashing() {
        let mut running = RunningDigest::default();
        assert_eq!(running.current(), EMPTY);
        running.update(b"hello ");
        // Reading the current value does not disturb the running state.
        let _ = running.current();
        running.update(b"world");
        assert_eq!(
            running.current(),
            "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
    }
}
