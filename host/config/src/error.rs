//! What can go wrong with a config file: errors stop the daemon, warnings do not.

use std::fmt;
use std::path::{Path, PathBuf};

/// A config file that cannot be used. Every message names the file, and the key and line where one is known.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    // The OS error is part of the message, not a `source`, so that chain-printing callers show it once.
    #[error("cannot read config file {}: {cause}", path.display())]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },

    #[error(
        "{}: import {} (from `imports = [..]`) cannot be read: {cause}",
        at(from, *line),
        import.display()
    )]
    Import {
        /// The file whose `imports` names the missing file.
        from: PathBuf,
        line: Option<usize>,
        import: PathBuf,
        cause: std::io::Error,
    },

    #[error("{}: invalid import pattern {pattern:?}: {message}", at(from, *line))]
    ImportPattern {
        from: PathBuf,
        line: Option<usize>,
        pattern: String,
        message: String,
    },

    #[error("{}, column {column}: invalid TOML: {message}", at(path, Some(*line)))]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },

    #[error("{}: {}", at(path, *line), version_problem(*found))]
    Version {
        path: PathBuf,
        line: Option<usize>,
        /// `None` when the file has no `version` key.
        found: Option<i64>,
    },

    #[error("{}: `{key}` must be {expected}, found {found}", at(path, *line))]
    WrongType {
        path: PathBuf,
        line: Option<usize>,
        key: String,
        expected: &'static str,
        found: String,
    },

    #[error("{}: `{key}` {problem}", at(path, *line))]
    InvalidValue {
        path: PathBuf,
        line: Option<usize>,
        key: String,
        problem: String,
    },
}

/// "<file>, line <n>" or "<file>".
fn at(path: &Path, line: Option<usize>) -> String {
    match line {
        Some(line) => format!("{}, line {line}", path.display()),
        None => path.display().to_string(),
    }
}

fn version_problem(found: Option<i64>) -> String {
    const READS: &str = "rcontainerd reads version 2 (containerd 1.x's format) only";
    match found {
        None => format!(
            "has no `version` key, which containerd reads as config version 1; {READS}: \
             add `version = 2` at the top and name each plugin table by its full URI, \
             e.g. [plugins.\"io.containerd.snapshotter.v1.overlayfs\"] instead of [plugins.overlayfs]"
        ),
        Some(1) => format!(
            "uses config version 1; {READS}: set `version = 2` and name each plugin table by its \
             full URI, e.g. [plugins.\"io.containerd.snapshotter.v1.overlayfs\"] instead of [plugins.overlayfs]"
        ),
        Some(3) => format!(
            "uses config version 3 (containerd 2.x's format); {READS}: set `version = 2` and use \
             containerd 1.6's plugin URIs"
        ),
        Some(other) => format!("uses config version {other}; {READS}: set `version = 2`"),
    }
}

/// Something in a config that is probably a mistake but does not stop the daemon (containerd ignores it silently).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// The file the key came from, when known.
    pub file: Option<PathBuf>,
    pub line: Option<usize>,
    /// The key path as TOML writes it, e.g. `plugins."io.containerd.snapshotter.v1.overlayfs".upperdir_lable`.
    pub key: String,
    pub kind: WarningKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarningKind {
    /// A key nobody reads; `suggestion` is the closest key that would be read.
    UnknownKey { suggestion: Option<String> },
    /// A `[plugins."<URI>"]` table for a plugin the daemon does not have.
    UnknownPlugin { suggestion: Option<String> },
    /// A plugin key whose value has another type than the plugin's default for it.
    TypeMismatch {
        expected: &'static str,
        found: &'static str,
    },
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (Some(file), line) => write!(f, "{}: ", at(file, line))?,
            (None, Some(line)) => write!(f, "line {line}: ")?,
            (None, None) => {}
        }
        match &self.kind {
            WarningKind::UnknownKey { suggestion } => {
                write!(f, "unknown key {}", self.key)?;
                match suggestion {
                    Some(s) => write!(f, "; did you mean `{s}`?"),
                    None => write!(f, "; it is ignored"),
                }
            }
            WarningKind::UnknownPlugin { suggestion } => {
                write!(f, "table {} configures no known plugin", self.key)?;
                match suggestion {
                    Some(s) => write!(f, "; did you mean `{s}`?"),
                    None => write!(f, "; it is ignored"),
                }
            }
            WarningKind::TypeMismatch { expected, found } => write!(
                f,
                "{} is {found}, but the plugin expects {expected}",
                self.key
            ),
        }
    }
}
