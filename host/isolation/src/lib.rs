//! Driver isolation: a plugin library's driver served from a supervised
//! child process instead of the daemon's, chosen per plugin by
//! `isolation = "process"` in its `[plugins."<uri>"]` table.
//!
//! The child is `rcontainerd-isolated` ([`child`]): it loads the same
//! unmodified `.so` through the ABI and serves the driver as containerd's
//! Snapshots or Content service on a private socket. The daemon's side is
//! a proxy plugin's driver (`rcontainerd-proxy`) whose every call the
//! [`supervisor`] admits and bounds by a deadline: one code path for
//! proxies and isolated drivers. A crash or hang fails the calls in flight
//! (Unavailable, naming the plugin); the supervisor restarts the child with
//! backoff; a reload (SIGHUP to the daemon) restarts, after draining, every
//! isolated driver whose library file was replaced.

pub mod child;
pub mod handshake;
pub mod settings;
pub mod supervisor;

use std::path::{Path, PathBuf};

pub use handshake::DriverKind;
pub use settings::{Mode, Settings, SettingsError};
pub use supervisor::{reload, start, stop_all, Isolated, Phase, Report, Spec, Supervisor};

/// The helper's file name.
pub const HELPER: &str = "rcontainerd-isolated";

/// Where the helper is: next to the daemon's executable (a build tree, or
/// `/usr/bin`), then in `../lib/rcontainerd/` beside it (the package's
/// place for it).
pub fn helper_path() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    [
        dir.join(HELPER),
        dir.join("../lib/rcontainerd").join(HELPER),
        Path::new("/usr/lib/rcontainerd").join(HELPER),
    ]
    .into_iter()
    .find(|p| p.is_file())
}
