//! One config file as read from disk: its values, and the line of every key for messages.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml_edit::{ImDocument, Item, Table, Value};

use super::error::ConfigError;
use super::keypath::KeyPath;

#[derive(Debug)]
pub struct SourceFile {
    pub path: PathBuf,
    pub table: toml::Table,
    pub lines: KeyLines,
}

impl SourceFile {
    /// Reads and parses `path`; a file that cannot be read is reported by the caller, who knows why it was read.
    pub fn read(path: &Path) -> Result<Self, ReadFailure> {
        let text = std::fs::read_to_string(path).map_err(ReadFailure::Io)?;
        Self::parse(path, &text).map_err(ReadFailure::Config)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let syntax_error = |span: Option<std::ops::Range<usize>>, message: &str| {
            let (line, column) = span.map_or((1, 1), |s| line_and_column(text, s.start));
            ConfigError::Syntax {
                path: path.to_owned(),
                line,
                column,
                message: one_line(message),
            }
        };
        let document = ImDocument::parse(text).map_err(|e| syntax_error(e.span(), e.message()))?;
        let table: toml::Table =
            toml::from_str(text).map_err(|e| syntax_error(e.span(), e.message()))?;
        let mut lines = KeyLines::default();
        lines.index_table(text, document.as_table(), &KeyPath::root());
        Ok(Self {
            path: path.to_owned(),
            table,
            lines,
        })
    }

    pub fn line_of(&self, key: &KeyPath) -> Option<usize> {
        self.lines.line_of(key)
    }
}

#[derive(Debug)]
pub enum ReadFailure {
    Io(std::io::Error),
    Config(ConfigError),
}

/// The 1-based line of every key in a file. Keys the file does not spell out (implicit parent tables) fall back
/// to their nearest spelled-out ancestor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyLines(BTreeMap<KeyPath, usize>);

impl KeyLines {
    pub fn line_of(&self, key: &KeyPath) -> Option<usize> {
        let mut key = key.clone();
        loop {
            if let Some(line) = self.0.get(&key) {
                return Some(*line);
            }
            key = key.parent()?;
        }
    }

    /// The lines of the keys under `prefix`, with `prefix` removed, for handing one table's lines on.
    pub fn under(&self, prefix: &KeyPath) -> KeyLines {
        let n = prefix.segments().len();
        KeyLines(
            self.0
                .iter()
                .filter(|(k, _)| k.segments().starts_with(prefix.segments()))
                .map(|(k, line)| {
                    let rest = k.segments()[n..]
                        .iter()
                        .fold(KeyPath::root(), |p, s| p.child(s));
                    (rest, *line)
                })
                .collect(),
        )
    }

    fn index_table(&mut self, text: &str, table: &Table, prefix: &KeyPath) {
        for (name, _) in table.iter() {
            let Some((key, item)) = table.get_key_value(name) else {
                continue;
            };
            let path = prefix.child(name);
            // A `[table]` header is where a reader looks for the table; a key's own span for everything else.
            let span = match item {
                Item::Table(t) if !t.is_implicit() => t.span().or_else(|| key.span()),
                _ => key.span().or_else(|| item.span()),
            };
            if let Some(span) = span {
                self.0
                    .insert(path.clone(), line_and_column(text, span.start).0);
            }
            match item {
                Item::Table(t) => self.index_table(text, t, &path),
                Item::Value(Value::InlineTable(t)) => self.index_inline(text, t, &path),
                _ => {}
            }
        }
    }

    fn index_inline(&mut self, text: &str, table: &toml_edit::InlineTable, prefix: &KeyPath) {
        for (name, _) in table.iter() {
            let Some((key, value)) = table.get_key_value(name) else {
                continue;
            };
            let path = prefix.child(name);
            if let Some(span) = key.span().or_else(|| value.span()) {
                self.0
                    .insert(path.clone(), line_and_column(text, span.start).0);
            }
            if let Item::Value(Value::InlineTable(t)) = value {
                self.index_inline(text, t, &path);
            }
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> SourceFile {
        SourceFile::parse(Path::new("/etc/x.toml"), text).unwrap()
    }

    fn path(segments: &[&str]) -> KeyPath {
        segments.iter().fold(KeyPath::root(), |p, s| p.child(s))
    }

    #[test]
    fn finds_lines_of_keys_headers_dotted_and_inline_keys() {
        let file = parse(
            "version = 2\n\
             \n\
             [grpc]\n\
             uid = 1\n\
             debug.level = \"info\"\n\
             [plugins.\"io.containerd.snapshotter.v1.overlayfs\"]\n\
             root_path = \"\"\n\
             inline = { a = 1, b = { c = 2 } }\n",
        );
        assert_eq!(file.line_of(&path(&["version"])), Some(1));
        assert_eq!(file.line_of(&path(&["grpc"])), Some(3));
        assert_eq!(file.line_of(&path(&["grpc", "uid"])), Some(4));
        assert_eq!(file.line_of(&path(&["grpc", "debug", "level"])), Some(5));
        let overlay = path(&["plugins", "io.containerd.snapshotter.v1.overlayfs"]);
        assert_eq!(file.line_of(&overlay), Some(6));
        assert_eq!(file.line_of(&overlay.child("root_path")), Some(7));
        let inline_key = overlay.child("inline").child("b").child("c");
        assert_eq!(file.lines.0.get(&inline_key), Some(&8));
        // Unknown keys fall back to the nearest known ancestor.
        assert_eq!(file.line_of(&overlay.child("nope")), Some(6));
        assert_eq!(
            file.lines.under(&overlay).line_of(&path(&["root_path"])),
            Some(7)
        );
    }

    #[test]
    fn syntax_error_names_file_line_and_column() {
        let err = SourceFile::parse(
            Path::new("/etc/x.toml"),
            "version = 2\nroot = \"/a\"\nstate = \n",
        )
        .unwrap_err();
        let ConfigError::Syntax { line, .. } = &err else {
            panic!("expected a syntax error, got {err:?}");
        };
        assert_eq!(*line, 3);
        let text = err.to_string();
        assert!(text.starts_with("/etc/x.toml, line 3, column "), "{text}");
        assert!(!text.contains('\n'), "{text}");
    }

    #[test]
    fn duplicate_key_is_a_syntax_error_on_its_line() {
        let err = SourceFile::parse(
            Path::new("/x.toml"),
            "version = 2\nroot = \"/a\"\nroot = \"/b\"\n",
        )
        .unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { line: 3, .. }), "{err}");
    }
}
