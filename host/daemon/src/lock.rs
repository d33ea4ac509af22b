//! One daemon per root and per state directory: an exclusive `flock` on a
//! file in each, taken before any plugin touches them and held until exit.
//! The kernel drops it when the process dies, even on `kill -9`.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{bail, Context};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// Name of the lock file in each locked directory; it holds the owner's pid.
pub const LOCK_FILE: &str = "rcontainerd.lock";

/// A held lock; dropping it releases the directory.
pub struct DirLock {
    _file: Flock<File>,
}

/// Locks `dir` (which must exist) for this process, or says which process
/// holds it.
pub fn lock(dir: &Path) -> anyhow::Result<DirLock> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("opening lock file {}", path.display()))?;
    let mut file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(locked) => locked,
        Err((mut file, Errno::EWOULDBLOCK)) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            match holder.trim().parse::<u32>() {
                Ok(pid) => bail!(
                    "{} is in use by another rcontainerd (pid {pid}; lock {})",
                    dir.display(),
                    path.display()
                ),
                Err(_) => bail!(
                    "{} is in use by another rcontainerd (lock {})",
                    dir.display(),
                    path.display()
                ),
            }
        }
        Err((_, e)) => bail!("locking {}: {e}", path.display()),
    };
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .with_context(|| format!("writing pid to {}", path.display()))?;
    Ok(DirLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock(dir.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join(LOCK_FILE))
                .unwrap()
                .trim(),
            std::process::id().to_string()
        );
        // flock locks belong to the open file description: a second open in
        // the same process conflicts just as another process would.
        let err = lock(dir.path()).err().unwrap().to_string();
        assert!(
            err.contains(&format!("(pid {}", std::process::id())),
            "{err}"
        );
        drop(held);
        lock(dir.path()).unwrap();
    }
}
