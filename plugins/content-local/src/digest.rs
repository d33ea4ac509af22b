//! Content digests: `sha256:<64 lower-case hex>` is the only algorithm this store hashes with.

use rcontainerd_plugin_api::{PluginError, Result};
use sha2::{Digest as _, Sha256};

/// The algorithm prefix of every digest this store produces.
pub const ALGORITHM: &str = "sha256";

/// A parsed sha256 digest, kept as its lower-case hex text (the blob's file name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobDigest {
    hex: String,
}

impl BlobDigest {
    /// Parses `sha256:<hex>`. A malformed string is `InvalidArgument`; a well-formed digest of an
    /// algorithm this store cannot compute (sha384, sha512) is `NotImplemented`.
    pub fn parse(text: &str) -> Result<Self> {
        let Some((algorithm, encoded)) = text.split_once(':') else {
            return Err(invalid(text, "missing algorithm prefix"));
        };
        let hex_len = match algorithm {
            ALGORITHM => 64,
            "sha384" => 96,
            "sha512" => 128,
            _ => return Err(invalid(text, "unknown algorithm")),
        };
        if encoded.len() != hex_len || !encoded.bytes().all(is_lower_hex) {
            return Err(invalid(
                text,
                format_args!("encoded part must be {hex_len} lower-case hex characters"),
            ));
        }
        if algorithm != ALGORITHM {
            return Err(PluginError::not_implemented(format_args!(
                "content store: digest algorithm {algorithm}"
            )));
        }
        Ok(BlobDigest {
            hex: encoded.to_owned(),
        })
    }

    /// The digest of a finished hash.
    pub fn from_hash(hash: [u8; 32]) -> Self {
        BlobDigest { hex: to_hex(&hash) }
    }

    /// The encoded part: the blob's file name.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// True for a file name in `blobs/sha256` that is a blob (not a stray temporary file).
    pub fn is_blob_name(name: &str) -> bool {
        name.len() == 64 && name.bytes().all(is_lower_hex)
    }
}

impl std::fmt::Display for BlobDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{ALGORITHM}:{}", self.hex)
    }
}

/// The lower-case hex sha256 of `data` (used to name ingest directories after their ref).
pub fn sha256_hex(data: &[u8]) -> String {
    to_hex(&Sha256::digest(data).into())
}

fn to_hex(bytes: &[u8; 32]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0xf)] as char);
    }
    out
}

fn is_lower_hex(byte: u8) -> bool {
    byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte)
}

fn invalid(text: &str, why: impl std::fmt::Display) -> PluginError {
    PluginError::invalid_argument(format!("invalid digest {text:?}: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcontainerd_plugin_api::ErrorKind;

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_and_prints_a_sha256_digest() {
        let digest = BlobDigest::parse(&format!("sha256:{EMPTY}")).unwrap();
        assert_eq!(digest.hex(), EMPTY);
        assert_eq!(digest.to_string(), format!("sha256:{EMPTY}"));
        assert_eq!(sha256_hex(b""), EMPTY);
        assert_eq!(BlobDigest::from_hash(Sha256::digest(b"").into()), digest);
    }

    #[test]
    fn malformed_digests_are_invalid_arguments() {
        for text in [
            "",
            "sha256",
            EMPTY,
            "sha256:",
            "sha256:abc",
            &format!("sha256:{}", EMPTY.to_uppercase()),
            &format!("sha256:{EMPTY}0"),
            &format!("md5:{EMPTY}"),
            &format!("sha256:../{}", &EMPTY[3..]),
        ] {
            let err = BlobDigest::parse(text).unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidArgument, "{text:?}: {err}");
        }
    }

    #[test]
    fn other_algorithms_are_not_implemented() {
        let err = BlobDigest::parse(&format!("sha512:{EMPTY}{EMPTY}")).unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotImplemented);
    }
}
