//! An open ingest: appends at the current offset, hashes as bytes arrive (and reports that
//! running digest to the daemon) and commits by linking the fsynced data file into
//! `blobs/sha256` under its digest.

use std::{
    fs::{self, File, OpenOptions, Permissions},
    io::ErrorKind as IoKind,
    os::unix::fs::{FileExt, PermissionsExt},
    path::PathBuf,
    time::SystemTime,
};

use rcontainerd_plugin_api::{
    content::{Status, Writer, WriterOptions},
    snapshot::Labels,
    PluginError, Result,
};

use crate::{
    digest::BlobDigest,
    hasher::RunningHash,
    ingest::{self, IngestState},
    labels,
    layout::{modified_nanos, now_nanos, sync_dir, unix_nanos, Layout},
    locks::RefLock,
    writeback::Writeback,
};

/// Bytes re-read at a time when rebuilding the hash of existing data.
const REHASH_CHUNK: usize = 1 << 20;

pub struct LocalWriter {
    layout: Layout,
    dir: PathBuf,
    state: IngestState,
    data: File,
    offset: u64,
    updated_at: i64,
    hash: RunningHash,
    writeback: Writeback,
    /// True while `hash` does not cover the data up to `offset` yet: rebuilding it after a
    /// resume or truncate waits until a write or commit needs it (resuming hosts often truncate
    /// right after opening, and the rebuild reads the whole ingest).
    hash_stale: bool,
    /// False once committed or closed.
    open: bool,
    /// Dropped last: the ref stays locked until the file is closed.
    lock: RefLock,
}

impl LocalWriter {
    /// Opens the ingest `options.reference`, resuming it if it exists. The caller holds `lock`.
    pub fn open(layout: &Layout, options: &WriterOptions, lock: RefLock) -> Result<Self> {
        let dir = layout.ingest(&options.reference);
        let total = options.expected_size.unwrap_or(0);
        let expected = options.expected_digest.clone().unwrap_or_default();
        let existing = IngestState::load(&dir)?.filter(|s| s.reference == options.reference);
        let (state, data) = match existing {
            Some(mut state) => {
                // The latest expectation wins, as with containerd's Write stream.
                if (total > 0 && total != state.total)
                    || (!expected.is_empty() && expected != state.expected)
                {
                    if total > 0 {
                        state.total = total;
                    }
                    if !expected.is_empty() {
                        state.expected = expected;
                    }
                    state.save(&dir)?;
                }
                let data = open_data(&dir, false)?;
                (state, data)
            }
            None => {
                // No usable state (new, or torn while being created): start from nothing.
                ingest::remove(&dir)?;
                fs::create_dir_all(&dir).map_err(|err| {
                    PluginError::io(format!("create ingest {}", dir.display()), err)
                })?;
                let data = open_data(&dir, true)?;
                let state = IngestState {
                    reference: options.reference.clone(),
                    started_at: now_nanos(),
                    total,
                    expected,
                };
                state.save(&dir)?;
                (state, data)
            }
        };
        let meta = data
            .metadata()
            .map_err(|err| PluginError::io(format!("stat ingest {}", dir.display()), err))?;
        Ok(LocalWriter {
            layout: layout.clone(),
            dir,
            updated_at: modified_nanos(&meta).max(state.started_at),
            state,
            data,
            offset: meta.len(),
            hash: RunningHash::default(),
            writeback: Writeback::from(meta.len()),
            hash_stale: meta.len() > 0,
            open: true,
            lock,
        })
    }

    fn reference(&self) -> &str {
        &self.state.reference
    }

    fn ensure_open(&self) -> Result<()> {
        if self.open {
            Ok(())
        } else {
            Err(PluginError::failed_precondition(format!(
                "writer for ref {} is closed",
                self.reference()
            )))
        }
    }

    fn ensure_hashed(&mut self) -> Result<()> {
        if self.hash_stale {
            self.rehash(self.offset)?;
        }
        Ok(())
    }

    /// Rebuilds the hash from the first `len` bytes of the data file and sets the offset there.
    fn rehash(&mut self, len: u64) -> Result<()> {
        self.hash.reset();
        let mut buf = vec![0u8; REHASH_CHUNK.min(len as usize)];
        let mut done = 0u64;
        while done < len {
            let want = buf.len().min((len - done) as usize);
            let n = match self.data.read_at(&mut buf[..want], done) {
                Ok(0) => break,
                Ok(n) => n,
                Err(err) if err.kind() == IoKind::Interrupted => continue,
                Err(err) => {
                    return Err(PluginError::io(
                        format!("read ingest {}", self.dir.display()),
                        err,
                    ))
                }
            };
            self.hash.update(&buf[..n]);
            done += n as u64;
        }
        self.offset = done;
        self.hash_stale = false;
        Ok(())
    }

    /// Removes the ingest and releases the ref: the writer is done.
    fn finish(&mut self) -> Result<()> {
        self.open = false;
        let removed = ingest::remove(&self.dir);
        self.lock.release();
        removed
    }

    fn link_into_blobs(&mut self, digest: &BlobDigest, labels: &Labels) -> Result<()> {
        let target = self.layout.blob(digest);
        if target.exists() {
            return Err(self.drop_duplicate(digest));
        }
        let blob_file = &self.data;
        let what = || format!("commit ingest {} as {digest}", self.dir.display());
        // The blob's mtime is its commit time (`created` in its info).
        blob_file
            .set_modified(SystemTime::now())
            .and_then(|()| blob_file.sync_data())
            .map_err(|err| PluginError::io(what(), err))?;
        // A link, unlike a rename, never replaces a blob another ref committed meanwhile.
        match fs::hard_link(ingest::data_path(&self.dir), &target) {
            Ok(()) => {}
            Err(err) if err.kind() == IoKind::AlreadyExists => {
                return Err(self.drop_duplicate(digest));
            }
            Err(err) => return Err(PluginError::io(what(), err)),
        }
        // Read-only only once committed: a failed commit leaves an ingest a writer can reopen.
        // The blob is in place either way, so a failure here is not the commit's.
        let _ = blob_file.set_permissions(Permissions::from_mode(0o444));
        let finished = self.finish();
        sync_dir(&self.layout.blobs_dir())?;
        labels::save(&self.layout, digest, labels)?;
        finished
    }

    /// Ends an ingest whose content is already stored, as containerd does: the ingest goes and
    /// the answer is `AlreadyExists` (a leftover ingest directory would only be listed, so its
    /// removal failing does not change the answer).
    fn drop_duplicate(&mut self, digest: &BlobDigest) -> PluginError {
        let _ = self.finish();
        already_exists(digest)
    }
}

impl Writer for LocalWriter {
    fn status(&self) -> Result<Status> {
        Ok(Status {
            reference: self.state.reference.clone(),
            offset: self.offset as i64,
            total: self.state.total,
            expected: self.state.expected.clone(),
            started_at: self.state.started_at,
            updated_at: self.updated_at,
        })
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> Result<usize> {
        self.ensure_open()?;
        if offset != self.offset {
            return Err(PluginError::invalid_argument(format!(
                "write @{offset} must occur at current offset {} of ref {}",
                self.offset,
                self.reference()
            )));
        }
        self.ensure_hashed()?;
        // Hashed beside the write, from the same buffer. Stale until both are done: a write
        // that fails or unwinds halfway leaves the hash rebuilt from the file when next needed.
        self.hash_stale = true;
        let file = &self.data;
        let stored = self
            .hash
            .update_while(data, || file.write_all_at(data, offset))
            .and_then(|stored| {
                stored.map_err(|err| {
                    PluginError::io(
                        format!("write ingest of ref {} at {offset}", self.state.reference),
                        err,
                    )
                })
            });
        if let Err(err) = stored {
            // Put file and hash back to the last good offset so the ingest stays consistent.
            let restored = self
                .data
                .set_len(offset)
                .map_err(|err| PluginError::io("truncate ingest", err))
                .and_then(|()| self.rehash(offset));
            if restored.is_err() {
                self.open = false;
                self.lock.release();
            }
            return Err(err);
        }
        self.hash_stale = false;
        self.offset += data.len() as u64;
        self.writeback.written(&self.data, self.offset);
        self.updated_at = unix_nanos(SystemTime::now());
        Ok(data.len())
    }

    fn truncate(&mut self, size: u64) -> Result<()> {
        self.ensure_open()?;
        if size > self.offset {
            return Err(PluginError::invalid_argument(format!(
                "truncate of ref {} to {size}: beyond its offset {}",
                self.reference(),
                self.offset
            )));
        }
        self.data.set_len(size).map_err(|err| {
            PluginError::io(format!("truncate ingest of ref {}", self.reference()), err)
        })?;
        self.offset = size;
        self.writeback.truncated(size);
        self.hash_stale = size > 0;
        if size == 0 {
            self.hash.reset();
        }
        self.updated_at = now_nanos();
        Ok(())
    }

    fn commit(&mut self, size: i64, expected: &str, labels: Labels) -> Result<()> {
        self.ensure_open()?;
        // Values given now win; otherwise those the writer was opened with apply.
        let size = if size > 0 { size } else { self.state.total };
        let expected = if expected.is_empty() {
            self.state.expected.clone()
        } else {
            expected.to_owned()
        };
        let expected = match expected.as_str() {
            "" => None,
            text => Some(BlobDigest::parse(text)?),
        };
        let written = self.offset as i64;
        if size > 0 && size != written {
            return Err(PluginError::failed_precondition(format!(
                "{:?} failed size validation: {written} != {size}",
                self.reference()
            )));
        }
        self.ensure_hashed()?;
        let digest = BlobDigest::from_hash(self.hash.digest());
        if let Some(expected) = expected.filter(|e| *e != digest) {
            return Err(PluginError::failed_precondition(format!(
                "unexpected commit digest {digest}, expected {expected}"
            )));
        }
        self.link_into_blobs(&digest, &labels)
    }

    fn close(&mut self) -> Result<()> {
        self.open = false;
        self.lock.release();
        Ok(())
    }

    /// The running hash that `commit` verifies with, so the daemon need not hash the bytes again.
    fn digest(&mut self) -> Result<Option<String>> {
        self.ensure_open()?;
        self.ensure_hashed()?;
        Ok(Some(BlobDigest::from_hash(self.hash.digest()).to_string()))
    }
}

fn open_data(dir: &std::path::Path, create: bool) -> Result<File> {
    let path = ingest::data_path(dir);
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(create)
        .open(&path)
        .map_err(|err| PluginError::io(format!("open {}", path.display()), err))
}

pub fn already_exists(digest: &BlobDigest) -> PluginError {
    PluginError::already_exists(format!("content {digest}"))
}
