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

/// A label set from `(key, value)` pairs (tests and callers that build labels in code).
pub fn from_pairs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Checks every label of a set.
pub fn validate_all(labels: &BTreeMap<String, String>) -> Result<()> {
    labels.iter().try_for_each(|(k, v)| validate(k, v))
}

/// Labels with an empty value mean "no such label" (containerd deletes them).
pub fn drop_empty(labels: &mut BTreeMap<String, String>) {
    labels.retain(|_, v| !v.is_empty());
}

/// Labels as stored: every label checked for size, empty values dropped.
pub fn stored(mut requested: BTreeMap<String, String>) -> Result<BTreeMap<String, String>> {
    validate_all(&requested)?;
    drop_empty(&mut requested);
    Ok(requested)
}

/// `map[key] = value` for a masked update of one key, where an absent or empty
/// value removes the key (an empty label is no label).
pub fn set_or_remove(map: &mut BTreeMap<String, String>, key: &str, value: Option<&String>) {
    match value {
        Some(value) if !value.is_empty() => {
            map.insert(key.to_string(), value.clone());
        }
        _ => {
            map.remove(key);
        }
    }
}

/// The labels after an Update, with containerd's field-mask rules for every
/// labelled record: no paths or `labels` replace every label; `labels.<key>`
/// sets that key from `requested` (an absent or empty value deletes it); any
/// other path is an invalid argument naming `object` (e.g. `namespace "x"`).
/// `label_error` adds the record's context to a label that is too large.
pub fn apply_update(
    mut current: BTreeMap<String, String>,
    requested: BTreeMap<String, String>,
    paths: &[String],
    object: &str,
    label_error: impl Fn(Error) -> Error,
) -> Result<BTreeMap<String, String>> {
    if paths.is_empty() {
        return stored(requested).map_err(label_error);
    }
    for path in paths {
        if path == "labels" {
            current = stored(requested.clone()).map_err(&label_error)?;
            continue;
        }
        match path.strip_prefix("labels.") {
            Some(key) if !key.is_empty() => {
                let value = requested.get(key);
                validate(key, value.map_or("", String::as_str)).map_err(&label_error)?;
                set_or_remove(&mut current, key, value);
            }
            _ => {
                return Err(Error::invalid_argument(format!(
                    "cannot update {path:?} field on {object}"
                )))
            }
        }
    }
    Ok(current)
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
