//! Content digests, `algorithm:hex`, judged with the same verdicts and messages as the OCI
//! digest library containerd and its ctr use: ctr refuses a bad digest before dialling, and the
//! daemon's services refuse it before touching a store.

use crate::errdefs;

/// Why a digest string was refused; the texts are the OCI library's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("invalid checksum digest format")]
    InvalidFormat,
    #[error("unsupported digest algorithm")]
    Unsupported,
    #[error("invalid checksum digest length")]
    InvalidLength,
}

/// Algorithms ctr knows, with the length of their hex encoding.
const ALGORITHMS: [(&str, usize); 3] = [("sha256", 64), ("sha384", 96), ("sha512", 128)];

/// Checks `digest` the way `digest.Digest.Validate` does.
pub fn validate(digest: &str) -> Result<(), DigestError> {
    let Some((algorithm, encoded)) = digest.split_once(':') else {
        return Err(DigestError::InvalidFormat);
    };
    if algorithm.is_empty() || encoded.is_empty() {
        return Err(DigestError::InvalidFormat);
    }
    let Some(&(_, hex_length)) = ALGORITHMS.iter().find(|(name, _)| *name == algorithm) else {
        // An unknown algorithm is "unsupported" only when the string is at
        // least shaped like a digest.
        return Err(if looks_like_a_digest(algorithm, encoded) {
            DigestError::Unsupported
        } else {
            DigestError::InvalidFormat
        });
    };
    if encoded.len() != hex_length {
        return Err(DigestError::InvalidLength);
    }
    if encoded
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(DigestError::InvalidFormat)
    }
}

/// The library's general digest grammar:
/// `[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+`.
/// Checks a digest a request names. containerd's services answer a bad one with a bare
/// `InvalidArgument "\"<digest>\" failed validation"` (no class suffix).
pub fn validate_request(digest: &str) -> errdefs::Result<()> {
    validate(digest).map_err(|_| {
        errdefs::Error::invalid_argument(format!("{digest:?} failed validation")).bare()
    })
}

fn looks_like_a_digest(algorithm: &str, encoded: &str) -> bool {
    let component = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    let algorithm_ok = algorithm.split(['.', '+', '_', '-']).all(component);
    let encoded_ok = encoded
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"=_-".contains(&b));
    algorithm_ok && encoded_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO: &str = "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";

    /// Verdicts containerd 1.6.20's ctr printed for the same strings.
    #[test]
    fn judges_digests_like_containerds_ctr() {
        assert_eq!(validate(HELLO), Ok(()));
        assert_eq!(validate(""), Err(DigestError::InvalidFormat));
        assert_eq!(validate("foo"), Err(DigestError::InvalidFormat));
        assert_eq!(validate("bad"), Err(DigestError::InvalidFormat));
        assert_eq!(validate("sha256:"), Err(DigestError::InvalidFormat));
        assert_eq!(validate(":abc"), Err(DigestError::InvalidFormat));
        assert_eq!(validate("sha256:abc"), Err(DigestError::InvalidLength));
        assert_eq!(validate("sha512:ab"), Err(DigestError::InvalidLength));
        assert_eq!(validate("md5:00"), Err(DigestError::Unsupported));
        assert_eq!(validate("MD5:00"), Err(DigestError::InvalidFormat));
        assert_eq!(validate("md5:0/0"), Err(DigestError::InvalidFormat));
        assert_eq!(validate("a..b:00"), Err(DigestError::InvalidFormat));
        let upper = HELLO.to_uppercase().replacen("SHA256", "sha256", 1);
        assert_eq!(validate(&upper), Err(DigestError::InvalidFormat));
    }

    #[test]
    fn a_request_with_a_bad_digest_is_a_bare_invalid_argument() {
        assert_eq!(validate_request(HELLO), Ok(()));
        let e = validate_request("sha256:abc").unwrap_err();
        assert_eq!(e.kind, errdefs::Kind::InvalidArgument);
        assert_eq!(e.wire_message(), "\"sha256:abc\" failed validation");
    }

    #[test]
    fn prints_the_libraries_messages() {
        assert_eq!(
            DigestError::InvalidFormat.to_string(),
            "invalid checksum digest format"
        );
        assert_eq!(
            DigestError::Unsupported.to_string(),
            "unsupported digest algorithm"
        );
        assert_eq!(
            DigestError::InvalidLength.to_string(),
            "invalid checksum digest length"
        );
    }
}
