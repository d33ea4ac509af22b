//! What the helper gives up before it loads the driver: the handshake pipe
//! moves out of the driver's reach, capabilities shrink to the kept list,
//! and `no_new_privs` keeps an exec from regaining any.

use std::collections::HashSet;
use std::fs::File;
use std::os::fd::{FromRawFd, RawFd};

use caps::{CapSet, Capability, CapsHashSet};

use super::ChildError;

/// Moves stdout (the handshake pipe) to a fresh descriptor, which it
/// returns, and points stdout at stderr: whatever the driver prints goes to
/// the log, never into the handshake.
pub fn take_handshake_pipe() -> Result<File, ChildError> {
    let fd: RawFd = nix::unistd::dup(1).map_err(|e| ChildError::Setup("dup stdout", e.into()))?;
    nix::unistd::dup2(2, 1).map_err(|e| ChildError::Setup("point stdout at stderr", e.into()))?;
    // SAFETY: `fd` was just returned by dup(2); nothing else owns it.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Keeps only `keep` of the capabilities, in every set.
pub fn keep_only(keep: &[String]) -> Result<(), ChildError> {
    let keep: CapsHashSet = keep
        .iter()
        .map(|name| {
            name.parse::<Capability>()
                .map_err(|_| ChildError::Capability(format!("unknown capability {name}")))
        })
        .collect::<Result<HashSet<_>, _>>()?;
    let cap_err =
        |what: &str, e: caps::errors::CapsError| ChildError::Capability(format!("{what}: {e}"));
    nix::sys::prctl::set_no_new_privs()
        .map_err(|e| ChildError::Setup("set no_new_privs", e.into()))?;
    let effective = caps::read(None, CapSet::Effective).map_err(|e| cap_err("read", e))?;
    // Shrinking the bounding set takes CAP_SETPCAP, so it goes first.
    if effective.contains(&Capability::CAP_SETPCAP) {
        let bounding = caps::read(None, CapSet::Bounding).map_err(|e| cap_err("read", e))?;
        for cap in bounding.difference(&keep) {
            caps::drop(None, CapSet::Bounding, *cap).map_err(|e| cap_err("drop", e))?;
        }
    }
    caps::clear(None, CapSet::Ambient).map_err(|e| cap_err("clear ambient", e))?;
    caps::clear(None, CapSet::Inheritable).map_err(|e| cap_err("clear inheritable", e))?;
    let permitted = caps::read(None, CapSet::Permitted).map_err(|e| cap_err("read", e))?;
    let kept: CapsHashSet = permitted.intersection(&keep).copied().collect();
    caps::set(None, CapSet::Effective, &kept).map_err(|e| cap_err("set effective", e))?;
    caps::set(None, CapSet::Permitted, &kept).map_err(|e| cap_err("set permitted", e))?;
    Ok(())
}
