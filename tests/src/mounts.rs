//! Mounts under a test's directory (the mount helper's mountinfo reader; the bench uses it
//! through this crate too), and removing whatever a test left there.

use std::path::Path;

pub use rcontainerd_mount::mounts_under;

/// Detaches every mount at or below `dir`, saying which could not be removed.
pub fn unmount_all_under(dir: &Path) {
    for point in rcontainerd_mount::unmount_all_under(dir) {
        eprintln!("test harness: could not unmount {}", point.display());
    }
}
