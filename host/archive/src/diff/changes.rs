//! The double walk: both trees in lexical order at once, reporting each path's change (the
//! order and kinds of continuity's `fs.Changes`, as containerd 1.6 uses it).

use std::cmp::Ordering;
use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::same::same_file;
use super::{DiffError, BUF_SIZE};

/// What happened to a path between the lower and the upper tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Change {
    /// Only in upper.
    Add,
    /// In both, different.
    Modify,
    /// Only in lower (its children, if any, are not reported).
    Delete,
    /// In both and the same, but a non-directory with more than one link: the layer writer
    /// needs it in case another of its links is written.
    Unmodified,
}

/// Receives each change in order: the path relative to the roots, and the upper's lstat
/// (`None` for [`Change::Delete`]).
pub(super) type OnChange<'a> =
    dyn FnMut(Change, &Path, Option<&Metadata>) -> Result<(), DiffError> + 'a;

/// Walks `lower` and `upper` together and calls `on_change` for each changed path, parents
/// before children, names within a directory in bytewise order.
pub(super) fn walk(
    lower: &Path,
    upper: &Path,
    on_change: &mut OnChange<'_>,
) -> Result<(), DiffError> {
    let mut walker = Walker {
        lower,
        upper,
        on_change,
        bufs: [vec![0; BUF_SIZE], vec![0; BUF_SIZE]],
    };
    walker.both(Path::new(""))
}

struct Walker<'a, 'f> {
    lower: &'a Path,
    upper: &'a Path,
    on_change: &'a mut OnChange<'f>,
    /// Scratch for content comparison, allocated once per walk.
    bufs: [Vec<u8>; 2],
}

impl Walker<'_, '_> {
    /// `rel` is a directory in both trees: merge their sorted listings.
    fn both(&mut self, rel: &Path) -> Result<(), DiffError> {
        let lower = list(&self.lower.join(rel))?;
        let upper = list(&self.upper.join(rel))?;
        let (mut l, mut u) = (lower.into_iter().peekable(), upper.into_iter().peekable());
        loop {
            let order = match (l.peek(), u.peek()) {
                (None, None) => return Ok(()),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some((ln, _)), Some((un, _))) => ln.as_bytes().cmp(un.as_bytes()),
            };
            match order {
                Ordering::Less => {
                    let Some((name, _)) = l.next() else {
                        unreachable!("peeked")
                    };
                    (self.on_change)(Change::Delete, &rel.join(name), None)?;
                }
                Ordering::Greater => {
                    let Some((name, meta)) = u.next() else {
                        unreachable!("peeked")
                    };
                    self.added(&rel.join(name), &meta)?;
                }
                Ordering::Equal => {
                    let (Some((name, lm)), Some((_, um))) = (l.next(), u.next()) else {
                        unreachable!("peeked")
                    };
                    self.in_both(&rel.join(name), &lm, &um)?;
                }
            }
        }
    }

    /// `rel` exists in both trees.
    fn in_both(&mut self, rel: &Path, lm: &Metadata, um: &Metadata) -> Result<(), DiffError> {
        let (lp, up) = (self.lower.join(rel), self.upper.join(rel));
        if !same_file(&lp, lm, &up, um, &mut self.bufs)? {
            (self.on_change)(Change::Modify, rel, Some(um))?;
        } else if !um.is_dir() && um.nlink() > 1 {
            (self.on_change)(Change::Unmodified, rel, Some(um))?;
        }
        match (lm.is_dir(), um.is_dir()) {
            (true, true) => self.both(rel),
            // A directory that replaced a file: all it holds is new.
            (false, true) => self.only_upper(rel),
            // A file that replaced a directory hides all of it: its children are not deleted
            // one by one.
            _ => Ok(()),
        }
    }

    /// `rel` is only in upper: it and everything under it is added.
    fn added(&mut self, rel: &Path, meta: &Metadata) -> Result<(), DiffError> {
        (self.on_change)(Change::Add, rel, Some(meta))?;
        if meta.is_dir() {
            self.only_upper(rel)?;
        }
        Ok(())
    }

    fn only_upper(&mut self, rel: &Path) -> Result<(), DiffError> {
        for (name, meta) in list(&self.upper.join(rel))? {
            self.added(&rel.join(name), &meta)?;
        }
        Ok(())
    }
}

/// A directory's entries with their lstat, sorted bytewise by name.
fn list(dir: &Path) -> Result<Vec<(OsString, Metadata)>, DiffError> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| DiffError::read(dir, e))? {
        let entry = entry.map_err(|e| DiffError::read(dir, e))?;
        // DirEntry::metadata does not follow symlinks.
        let meta = entry
            .metadata()
            .map_err(|e| DiffError::read(&entry.path(), e))?;
        entries.push((entry.file_name(), meta));
    }
    entries.sort_unstable_by(|(a, _), (b, _)| a.as_bytes().cmp(b.as_bytes()));
    Ok(entries)
}
