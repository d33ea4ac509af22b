//! The btrfs kernel interface this driver uses: create a subvolume, snapshot one (optionally
//! read-only), destroy one. Each call names the new or doomed subvolume by its entry `name`
//! in the directory `dir`.

use std::{ffi::OsStr, fs::File, io, os::unix::ffi::OsStrExt, os::unix::io::AsRawFd, path::Path};

const BTRFS_IOCTL_MAGIC: u8 = 0x94;
/// Longest name `btrfs_ioctl_vol_args` carries (plus its nul).
const PATH_NAME_MAX: usize = 4087;
/// Longest name `btrfs_ioctl_vol_args_v2` carries (plus its nul).
const SUBVOL_NAME_MAX: usize = 4039;
/// `BTRFS_SUBVOL_RDONLY`: the new snapshot is read-only.
const SUBVOL_RDONLY: u64 = 1 << 1;

/// `struct btrfs_ioctl_vol_args`.
#[repr(C)]
pub struct VolArgs {
    fd: i64,
    name: [u8; PATH_NAME_MAX + 1],
}

/// `struct btrfs_ioctl_vol_args_v2` (the size/qgroup union as its 32 unused bytes).
#[repr(C)]
pub struct VolArgsV2 {
    fd: i64,
    transid: u64,
    flags: u64,
    unused: [u64; 4],
    name: [u8; SUBVOL_NAME_MAX + 1],
}

nix::ioctl_write_ptr!(subvol_create, BTRFS_IOCTL_MAGIC, 14, VolArgs);
nix::ioctl_write_ptr!(snap_destroy, BTRFS_IOCTL_MAGIC, 15, VolArgs);
nix::ioctl_write_ptr!(snap_create_v2, BTRFS_IOCTL_MAGIC, 23, VolArgsV2);

/// Copies `name` into a nul-terminated fixed buffer, refusing names that do not fit or hold a
/// slash or nul.
fn fill_name(buf: &mut [u8], name: &OsStr) -> io::Result<()> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= buf.len() || bytes.contains(&b'/') || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad subvolume name {name:?}"),
        ));
    }
    buf[..bytes.len()].copy_from_slice(bytes);
    Ok(())
}

/// Creates the empty subvolume `dir/name`.
pub fn create_subvolume(dir: &Path, name: &OsStr) -> io::Result<()> {
    let parent = File::open(dir)?;
    let mut args = VolArgs {
        fd: 0,
        name: [0; PATH_NAME_MAX + 1],
    };
    fill_name(&mut args.name, name)?;
    // SAFETY: `parent` is an open directory and `args` a valid, nul-terminated
    // btrfs_ioctl_vol_args that outlives the call.
    unsafe { subvol_create(parent.as_raw_fd(), &args) }?;
    Ok(())
}

/// Snapshots the subvolume `source` as `dir/name`, read-only if asked.
pub fn snapshot_subvolume(
    source: &Path,
    dir: &Path,
    name: &OsStr,
    readonly: bool,
) -> io::Result<()> {
    let source = File::open(source)?;
    let parent = File::open(dir)?;
    let mut args = VolArgsV2 {
        fd: source.as_raw_fd() as i64,
        transid: 0,
        flags: if readonly { SUBVOL_RDONLY } else { 0 },
        unused: [0; 4],
        name: [0; SUBVOL_NAME_MAX + 1],
    };
    fill_name(&mut args.name, name)?;
    // SAFETY: `parent` is an open directory, `args.fd` an open subvolume kept open by `source`
    // for the call, and `args` a valid, nul-terminated btrfs_ioctl_vol_args_v2.
    unsafe { snap_create_v2(parent.as_raw_fd(), &args) }?;
    Ok(())
}

/// Destroys the subvolume `dir/name` with everything in it.
pub fn destroy_subvolume(dir: &Path, name: &OsStr) -> io::Result<()> {
    let parent = File::open(dir)?;
    let mut args = VolArgs {
        fd: 0,
        name: [0; PATH_NAME_MAX + 1],
    };
    fill_name(&mut args.name, name)?;
    // SAFETY: `parent` is an open directory and `args` a valid, nul-terminated
    // btrfs_ioctl_vol_args that outlives the call.
    unsafe { snap_destroy(parent.as_raw_fd(), &args) }?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_structs_match_the_kernel_layout() {
        assert_eq!(std::mem::size_of::<VolArgs>(), 4096);
        assert_eq!(std::mem::size_of::<VolArgsV2>(), 4096);
    }

    #[test]
    fn names_must_fit_and_be_one_component() {
        let mut buf = [0u8; 8];
        assert!(fill_name(&mut buf, OsStr::new("a/b")).is_err());
        assert!(fill_name(&mut buf, OsStr::new("")).is_err());
        assert!(fill_name(&mut buf, OsStr::new("12345678")).is_err());
        fill_name(&mut buf, OsStr::new("1234567")).unwrap();
        assert_eq!(&buf, b"1234567\0");
    }
}
