//! Reading a config file and everything it imports, in containerd's order.
//!
//! Files are read breadth-first: the main file, then its imports in the order listed (a glob's matches sorted by
//! name), then theirs. Each file is read once, so import cycles are harmless. A relative import, glob or not, is
//! relative to the importing file's directory (containerd 1.6 resolves relative *globs* against the daemon's
//! working directory instead; we do not copy that). A glob that matches nothing is fine; an exact path that does
//! not exist is an error naming it.

use std::collections::{BTreeSet, VecDeque};
use std::path::{Component, Path, PathBuf};

use super::error::ConfigError;
use super::merge::{apply_file, ImportEntry, Role};
use super::source::{ReadFailure, SourceFile};
use super::Config;

/// Reads `path` and its imports over the defaults. A missing file is an error here; whether a missing *default*
/// path is fine is the caller's decision (containerd then runs on defaults).
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let mut config = Config::default();
    let mut seen = BTreeSet::new();
    let mut pending: VecDeque<(PathBuf, Option<ImportedFrom>)> =
        VecDeque::from([(path.to_owned(), None)]);

    while let Some((path, imported_from)) = pending.pop_front() {
        if !seen.insert(identity(&path)) {
            continue;
        }
        let file = match SourceFile::read(&path) {
            Ok(file) => file,
            Err(ReadFailure::Config(e)) => return Err(e),
            Err(ReadFailure::Io(cause)) => {
                return Err(match imported_from {
                    None => ConfigError::Read { path, cause },
                    Some(ImportedFrom { file: from, line }) => ConfigError::Import {
                        from,
                        line,
                        import: path,
                        cause,
                    },
                })
            }
        };
        let role = match imported_from {
            None => Role::Main,
            Some(_) => Role::Import,
        };
        let imports = apply_file(&mut config, &file, role)?;
        for entry in imports {
            for import in resolve(&file.path, &entry)? {
                let from = ImportedFrom {
                    file: file.path.clone(),
                    line: entry.line,
                };
                pending.push_back((import, Some(from)));
            }
        }
    }
    Ok(config)
}

/// The file and line whose `imports` named a pending file (`None` stands for the main file).
struct ImportedFrom {
    file: PathBuf,
    line: Option<usize>,
}

/// The files one `imports` entry names: a glob's sorted matches (when the entry contains `*`, as containerd
/// decides), or the one path.
fn resolve(from: &Path, entry: &ImportEntry) -> Result<Vec<PathBuf>, ConfigError> {
    let base = from.parent().unwrap_or(Path::new("."));
    let joined = base.join(&entry.pattern);
    if !entry.pattern.contains('*') {
        return Ok(vec![normalize(&joined)]);
    }
    let invalid = |message: String| ConfigError::ImportPattern {
        from: from.to_owned(),
        line: entry.line,
        pattern: entry.pattern.clone(),
        message,
    };
    let pattern = joined
        .to_str()
        .ok_or_else(|| invalid("the path is not valid UTF-8".into()))?;
    let mut matches = glob::glob(pattern)
        .map_err(|e| invalid(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(e.to_string()))?;
    matches.sort();
    Ok(matches.iter().map(|m| normalize(m)).collect())
}

/// What makes two paths the same file for cycle detection: the canonical path when the file exists.
fn identity(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| normalize(path))
}

/// Drops `.` components and folds `dir/..`, without touching the file system (like Go's `filepath.Clean`).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_cleans_like_go() {
        assert_eq!(
            normalize(Path::new("/etc/./a/../b.toml")),
            Path::new("/etc/b.toml")
        );
        assert_eq!(
            normalize(Path::new("./conf.d/x.toml")),
            Path::new("conf.d/x.toml")
        );
        assert_eq!(normalize(Path::new("../x.toml")), Path::new("../x.toml"));
        assert_eq!(normalize(Path::new(".")), Path::new("."));
    }
}
