//! Finding config keys nobody reads (containerd ignores them silently; we say so, with a close match).

use std::collections::BTreeMap;

use super::error::{ConfigWarning, WarningKind};
use super::keypath::KeyPath;
use super::source::KeyLines;
use super::Config;

/// Warnings for `config`: unknown keys found while loading (top level and containerd's own sections), tables for
/// plugins not in `known` (URI → the plugin's default table), and keys inside a known plugin's table that its
/// defaults do not have. Nested tables are checked where the defaults spell them out; a table that is empty in
/// the defaults is a map whose keys the operator chooses, so it is not checked.
pub fn check_plugin_tables(
    config: &Config,
    known: &BTreeMap<String, toml::Table>,
) -> Vec<ConfigWarning> {
    let mut warnings = config.origins.warnings.clone();
    let no_lines = KeyLines::default();
    for (uri, table) in &config.plugins {
        let origin = config.origins.plugin_tables.get(uri);
        let file = origin.map(|o| o.file.clone());
        let lines = origin.map_or(&no_lines, |o| &o.lines);
        let path = KeyPath::root().child("plugins").child(uri);
        match known.get(uri) {
            Some(defaults) => check_table(
                &mut warnings,
                &Place {
                    file: &file,
                    lines,
                    path: &path,
                    relative: &KeyPath::root(),
                },
                table,
                defaults,
            ),
            None => warnings.push(ConfigWarning {
                file,
                line: lines.line_of(&KeyPath::root()),
                key: path.to_string(),
                kind: WarningKind::UnknownPlugin {
                    suggestion: closest(uri, known.keys().map(String::as_str)).map(str::to_owned),
                },
            }),
        }
    }
    warnings
}

/// Where a table being checked sits: its file, the file's lines for the plugin table, its full key path and its
/// path relative to the plugin table.
struct Place<'a> {
    file: &'a Option<std::path::PathBuf>,
    lines: &'a KeyLines,
    path: &'a KeyPath,
    relative: &'a KeyPath,
}

fn check_table(
    warnings: &mut Vec<ConfigWarning>,
    place: &Place<'_>,
    table: &toml::Table,
    defaults: &toml::Table,
) {
    for (key, value) in table {
        let path = place.path.child(key);
        let relative = place.relative.child(key);
        let warn = |kind| ConfigWarning {
            file: place.file.clone(),
            line: place.lines.line_of(&relative),
            key: path.to_string(),
            kind,
        };
        let Some(default) = defaults.get(key) else {
            warnings.push(warn(WarningKind::UnknownKey {
                suggestion: closest(key, defaults.keys().map(String::as_str)).map(str::to_owned),
            }));
            continue;
        };
        match (value, default) {
            // An empty table in the defaults is a map whose keys the operator chooses.
            (toml::Value::Table(_), toml::Value::Table(default)) if default.is_empty() => {}
            (toml::Value::Table(own), toml::Value::Table(default)) => {
                let inner = Place {
                    file: place.file,
                    lines: place.lines,
                    path: &path,
                    relative: &relative,
                };
                check_table(warnings, &inner, own, default);
            }
            _ if !same_type(value, default) => warnings.push(warn(WarningKind::TypeMismatch {
                expected: type_name(default),
                found: type_name(value),
            })),
            _ => {}
        }
    }
}

/// Whether a value fits where the default has `default`; integers fit where a float is expected.
fn same_type(value: &toml::Value, default: &toml::Value) -> bool {
    matches!(
        (value, default),
        (toml::Value::Integer(_), toml::Value::Float(_))
    ) || std::mem::discriminant(value) == std::mem::discriminant(default)
}

fn type_name(value: &toml::Value) -> &'static str {
    match value {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a float",
        toml::Value::Boolean(_) => "true or false",
        toml::Value::Datetime(_) => "a datetime",
        toml::Value::Array(_) => "an array",
        toml::Value::Table(_) => "a table",
    }
}

/// The candidate closest to `word` by edit distance (a transposition counts once), if it is close enough to be
/// a typo: at most a third of the word's length and at most three edits, and one edit always allowed.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let allowed = (word.chars().count() / 3).clamp(1, 3);
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(distance, _)| *distance <= allowed)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_finds_typos_and_rejects_strangers() {
        let keys = [
            "root_path",
            "upperdir_label",
            "sync_remove",
            "mount_options",
        ];
        assert_eq!(closest("upperdir_lable", keys), Some("upperdir_label"));
        assert_eq!(closest("sync_remov", keys), Some("sync_remove"));
        assert_eq!(closest("compression", keys), None);
        assert_eq!(
            closest(
                "io.containerd.snapshotter.v1.overlayfz",
                [
                    "io.containerd.snapshotter.v1.overlayfs",
                    "io.containerd.snapshotter.v1.native"
                ]
            ),
            Some("io.containerd.snapshotter.v1.overlayfs")
        );
        // Long names share most of their letters; a different id is not a typo.
        assert_eq!(
            closest(
                "io.containerd.grpc.v1.cri",
                ["io.containerd.grpc.v1.version"]
            ),
            None
        );
        assert_eq!(closest("x", std::iter::empty()), None);
    }

    #[test]
    fn integers_fit_float_keys_but_strings_do_not_fit_booleans() {
        assert!(same_type(
            &toml::Value::Integer(1),
            &toml::Value::Float(0.5)
        ));
        assert!(!same_type(
            &toml::Value::String("x".into()),
            &toml::Value::Boolean(false)
        ));
        assert!(same_type(
            &toml::Value::Array(vec![]),
            &toml::Value::Array(vec![])
        ));
    }
}
