//! Label rules shared by every labelled record (containerd's `labels.Validate`).

use std::collections::BTreeMap;

use crate::errdefs::{Error, Result};

/// The most bytes a label's key and value may take together.
pub const MAX_LABEL_SIZE: usize = 4096;

/// How much of an oversized key the error message quotes.
const QUOTED_KEY_BYTES: usize = 10;

/// Checks one label: key and value together at most [`MAX_LABEL_SIZE`] bytes.
pub fn validate(key: &str, value: &str) -> Result<()> {
    if key.len() + value.len() <= MAX_LABEL_SIZE {
        return Ok(());
    }
    Err(Error::invalid_argument(format!(
        "label key and value greater than maximum size ({MAX_LABEL_SIZE} bytes), key: {}",
        quoted_key(key)
    )))
}

/// Checks every label of a set.
pub fn validate_all(labels: &BTreeMap<String, String>) -> Result<()> {
    labels.iter().try_for_each(|(k, v)| validate(k, v))
}

/// Labels with an empty value mean "no such label" (containerd deletes them).
pub fn drop_empty(labels: &mut BTreeMap<String, String>) {
    labels.retain(|_, v| !v.is_empty());
}

/// The first bytes of an oversized key, cut on a character boundary.
fn quoted_key(key: &str) -> &str {
    let mut end = key.len().min(QUOTED_KEY_BYTES);
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    &key[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errdefs::Kind;

    #[test]
    fn key_and_value_share_the_limit() {
        let key = "k".repeat(96);
        assert!(validate(&key, &"v".repeat(4000)).is_ok());
        let err = validate(&key, &"v".repeat(4001)).unwrap_err();
        assert_eq!(err.kind, Kind::InvalidArgument);
        assert_eq!(
            err.message,
            "label key and value greater than maximum size (4096 bytes), key: kkkkkkkkkk"
        );
        assert!(validate(&"k".repeat(4097), "").is_err());
    }

    #[test]
    fn quoted_key_never_splits_a_character() {
        // 'é' is two bytes: nine ASCII bytes then 'é' straddles byte ten.
        let key = format!("{}é{}", "a".repeat(9), "b".repeat(4096));
        let err = validate(&key, "").unwrap_err();
        assert!(err.message.ends_with("key: aaaaaaaaa"), "{}", err.message);
    }

    #[test]
    fn validate_all_reports_the_oversized_label() {
        let mut labels = BTreeMap::new();
        labels.insert("ok".to_string(), "fine".to_string());
        assert!(validate_all(&labels).is_ok());
        labels.insert("zbig".to_string(), "x".repeat(MAX_LABEL_SIZE));
        assert!(validate_all(&labels)
            .unwrap_err()
            .message
            .ends_with("key: zbig"));
    }

    #[test]
    fn drop_empty_removes_only_empty_values() {
        let mut labels: BTreeMap<String, String> = [("a", ""), ("b", "1")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into();
        drop_empty(&mut labels);
        assert_eq!(labels.keys().collect::<Vec<_>>(), ["b"]);
    }
}
