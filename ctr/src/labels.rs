//! `KEY=VALUE` label arguments, read the way containerd's ctr reads them.

use std::collections::{BTreeMap, HashMap};

/// The label value a bare `KEY` argument stands for.
const BARE_LABEL_VALUE: &str = "true";

/// `KEY=VALUE` arguments as a map; a bare `KEY` means `KEY=true`, and a later
/// argument for the same key wins.
pub fn parse_labels(args: &[String]) -> BTreeMap<String, String> {
    args.iter()
        .map(|arg| match arg.split_once('=') {
            Some((key, value)) => (key.to_owned(), value.to_owned()),
            None => (arg.clone(), BARE_LABEL_VALUE.to_owned()),
        })
        .collect()
}

/// An Update of exactly these labels, as containerd's ctr sends it: the mask names each key
/// (`labels.<key>`); empty values are left out of the labels sent, so the mask deletes them.
pub fn label_update(
    labels: BTreeMap<String, String>,
) -> (HashMap<String, String>, prost_types::FieldMask) {
    let paths = labels.keys().map(|key| format!("labels.{key}")).collect();
    let values = labels
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .collect();
    (values, prost_types::FieldMask { paths })
}

/// Labels as `key=value` joined by commas, sorted (containerd's ctr prints
/// them in Go's random map order; sorted is one of those orders).
pub fn joined<'a>(labels: impl IntoIterator<Item = (&'a String, &'a String)>) -> String {
    let mut pairs: Vec<String> = labels
        .into_iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    pairs.sort();
    pairs.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_labels_like_containerds_ctr() {
        let args: Vec<String> = ["novalue", "eq=a=b", "dup=1", "dup=2", "empty="]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let labels = parse_labels(&args);
        let expected: BTreeMap<String, String> = [
            ("dup", "2"),
            ("empty", ""),
            ("eq", "a=b"),
            ("novalue", "true"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(labels, expected);
    }

    #[test]
    fn joins_sorted_pairs() {
        let labels: BTreeMap<String, String> = [("b", "2"), ("a", "x=y")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(joined(&labels), "a=x=y,b=2");
        assert_eq!(joined(&BTreeMap::new()), "");
    }
}
