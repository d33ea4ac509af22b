//! Versioned record values: one version byte, then the postcard encoding of
//! that version's struct.
//!
//! postcard is compact but not self-describing: a struct's fields cannot be
//! added or reordered in place. A changed record gets a new version number
//! and a new struct; the reader keeps decoding every older version it knows.

use serde::de::DeserializeOwned;
use serde::Serialize;

use rcontainerd_pkg::errdefs::{Error, Result};

/// Encodes `record` as version `version` of its kind.
pub fn encode<T: Serialize>(kind: &str, version: u8, record: &T) -> Result<Vec<u8>> {
    let mut value = vec![version];
    postcard::to_io(record, &mut value)
        .map_err(|e| Error::internal(format!("metadata: encode {kind} record: {e}")))?;
    Ok(value)
}

/// Splits a stored value into its version byte and its payload.
pub fn split_version<'v>(kind: &str, value: &'v [u8]) -> Result<(u8, &'v [u8])> {
    match value.split_first() {
        Some((&version, payload)) => Ok((version, payload)),
        None => Err(Error::internal(format!("metadata: empty {kind} record"))),
    }
}

/// Decodes the payload of a record whose version the caller has matched.
pub fn decode_payload<T: DeserializeOwned>(kind: &str, version: u8, payload: &[u8]) -> Result<T> {
    postcard::from_bytes(payload).map_err(|e| {
        Error::internal(format!(
            "metadata: decode {kind} record version {version}: {e}"
        ))
    })
}

/// Decodes a record whose kind has one version so far, `version`; any other
/// is [`unknown_version`]. A kind that gains a second version matches on
/// [`split_version`] instead, keeping an arm per version it can read.
pub fn decode<T: DeserializeOwned>(kind: &str, version: u8, value: &[u8]) -> Result<T> {
    match split_version(kind, value)? {
        (found, payload) if found == version => decode_payload(kind, version, payload),
        (other, _) => Err(unknown_version(kind, other)),
    }
}

/// The error for a record written by a newer (or corrupt) schema.
pub fn unknown_version(kind: &str, version: u8) -> Error {
    Error::internal(format!(
        "metadata: {kind} record has unknown version {version}"
    ))
}

pub use rcontainerd_pkg::time::{from_unix_nanos, to_unix_nanos};

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        name: String,
        size: u64,
    }

    #[test]
    fn leading_byte_is_the_version() {
        let sample = Sample {
            name: "a".into(),
            size: 7,
        };
        let value = encode("sample", 3, &sample).unwrap();
        let (version, payload) = split_version("sample", &value).unwrap();
        assert_eq!(version, 3);
        assert_eq!(
            decode_payload::<Sample>("sample", 3, payload).unwrap(),
            sample
        );
    }

    #[test]
    fn empty_and_truncated_values_are_errors() {
        assert!(split_version("sample", &[]).is_err());
        let value = encode(
            "sample",
            1,
            &Sample {
                name: "abc".into(),
                size: 1 << 40,
            },
        )
        .unwrap();
        let err = decode_payload::<Sample>("sample", 1, &value[1..3]).unwrap_err();
        assert!(
            err.message.contains("decode sample record version 1"),
            "{err}"
        );
    }
}
