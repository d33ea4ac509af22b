//! Diffs of real trees (as root: ownership, device nodes, `trusted.*` and
//! `security.capability` xattrs), read back entry by entry.

use std::ffi::CString;
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{lchown, symlink, PermissionsExt};
use std::path::Path;
use std::process::Command;

use nix::sys::stat::{makedev, mknod, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use sha2::{Digest, Sha256};

use super::{write_diff, DiffCompression, Written};

/// A v2 `security.capability` granting cap_net_raw (bit 13) permitted.
const CAP_NET_RAW: [u8; 20] = [
    1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];
/// diffID of a layer with no entries (two zero blocks), the same as containerd's.
const EMPTY_LAYER: &str = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the diff tests need root (chown, mknod, trusted.* and security.* xattrs)"
    );
}

fn dir(path: &Path) {
    fs::create_dir_all(path).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

fn file(path: &Path, content: &str) {
    fs::write(path, content).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
}

fn set_mtime(path: &Path, secs: i64, nanos: i64) {
    let time = TimeSpec::new(secs, nanos);
    utimensat(None, path, &time, &time, UtimensatFlags::NoFollowSymlink).unwrap();
}

fn set_xattr(path: &Path, name: &str, value: &[u8]) {
    let c_path = CString::new(path.as_os_str().as_bytes()).unwrap();
    let c_name = CString::new(name).unwrap();
    // SAFETY: NUL-terminated strings alive for the call; `value` is valid for `value.len()`
    // bytes.
    let rc = unsafe {
        libc::lsetxattr(
            c_path.as_ptr(),
            c_name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(rc, 0, "setxattr {name}: {}", io::Error::last_os_error());
}

/// A copy that keeps inodes' links, ownership, modes, nanosecond mtimes and xattrs: an
/// upper that starts out the same as its lower.
fn copy_tree(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

fn diff(lower: &Path, upper: &Path, compression: DiffCompression) -> (Vec<u8>, Written) {
    let mut out = Vec::new();
    let written = write_diff(lower, upper, &mut out, compression).unwrap();
    (out, written)
}

fn sha256(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// One line per entry: type, name, mode, owner, then what applies (link target, device
/// numbers, PAX xattr records, content).
fn entries(layer: &[u8]) -> Vec<String> {
    let mut archive = tar::Archive::new(layer);
    let mut lines = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let header = entry.header().clone();
        let kind = match header.entry_type() {
            tar::EntryType::Regular => "file",
            tar::EntryType::Directory => "dir",
            tar::EntryType::Symlink => "symlink",
            tar::EntryType::Link => "link",
            tar::EntryType::Char => "char",
            tar::EntryType::Fifo => "fifo",
            other => panic!("unexpected entry type {other:?}"),
        };
        let mut line = format!(
            "{kind} {} {:o} {}:{}",
            String::from_utf8_lossy(&entry.path_bytes()),
            header.mode().unwrap(),
            header.uid().unwrap(),
            header.gid().unwrap(),
        );
        if let Some(link) = entry.link_name_bytes() {
            line += &format!(" -> {}", String::from_utf8_lossy(&link));
        }
        if kind == "char" {
            line += &format!(
                " dev={},{}",
                header.device_major().unwrap().unwrap(),
                header.device_minor().unwrap().unwrap()
            );
        }
        if let Some(records) = entry.pax_extensions().unwrap() {
            for record in records {
                let record = record.unwrap();
                let key = record.key().unwrap();
                if let Some(xattr) = key.strip_prefix("SCHILY.xattr.") {
                    line += &format!(" xattr:{xattr}={:?}", record.value_bytes());
                }
            }
        }
        let mut content = String::new();
        entry.read_to_string(&mut content).unwrap();
        if !content.is_empty() {
            line += &format!(" {content:?}");
        }
        lines.push(line);
    }
    lines
}

/// The lower tree of the main case; its upper starts as a copy.
fn build_lower(lower: &Path) {
    dir(lower);
    dir(&lower.join("bin"));
    file(&lower.join("bin/tool"), "tool");
    file(&lower.join("cap"), "cap");
    dir(&lower.join("d2"));
    file(&lower.join("d2/c"), "c");
    dir(&lower.join("etc"));
    for name in ["conf", "keep", "mode", "owner", "xattr"] {
        file(&lower.join("etc").join(name), "a=1");
    }
    dir(&lower.join("gone/sub"));
    file(&lower.join("gone/a"), "a");
    file(&lower.join("gone/sub/b"), "b");
    dir(&lower.join("hl"));
    file(&lower.join("hl/a"), "linked");
    fs::hard_link(lower.join("hl/a"), lower.join("hl/b")).unwrap();
    dir(&lower.join("p/q"));
    file(&lower.join("p/q/old"), "old");
    file(&lower.join("rm.txt"), "rm");
    dir(&lower.join("same"));
    symlink("aaaa", lower.join("same/link")).unwrap();
    set_mtime(&lower.join("same/link"), 1_000_000, 0);
    for (name, content) in [("trunc", "1111"), ("trunc-eq", "3333"), ("nanos", "5555")] {
        file(&lower.join("same").join(name), content);
        set_mtime(&lower.join("same").join(name), 1_000_000, 0);
    }
    file(&lower.join("type"), "t");
}

/// The upper of the main case: every kind of change.
fn change_upper(upper: &Path) {
    // Added, in the order that tells `a/x` from `a.b`.
    dir(&upper.join("a"));
    file(&upper.join("a/x"), "x");
    file(&upper.join("a.b"), "ab");
    set_xattr(&upper.join("cap"), "security.capability", &CAP_NET_RAW);
    fs::remove_dir_all(upper.join("d2")).unwrap();
    file(&upper.join("d2"), "now a file");
    dir(&upper.join("dev"));
    mknod(
        &upper.join("dev/cdev"),
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o644),
        makedev(1, 3),
    )
    .unwrap();
    nix::unistd::mkfifo(&upper.join("dev/fifo"), Mode::from_bits_truncate(0o644)).unwrap();
    std::os::unix::net::UnixListener::bind(upper.join("dev/sock")).unwrap();
    file(&upper.join("etc/conf"), "a=22");
    fs::set_permissions(upper.join("etc/mode"), fs::Permissions::from_mode(0o4755)).unwrap();
    lchown(upper.join("etc/owner"), Some(1000), Some(1000)).unwrap();
    // Not compared, not written (containerd 1.6 carries only security.capability).
    set_xattr(&upper.join("etc/xattr"), "user.x", b"1");
    set_xattr(&upper.join("etc/xattr"), "trusted.x", b"2");
    fs::remove_dir_all(upper.join("gone")).unwrap();
    // A new link to an unchanged inode: its old links must follow it into the layer.
    fs::hard_link(upper.join("hl/a"), upper.join("hl/c")).unwrap();
    dir(&upper.join("long"));
    file(&upper.join("long").join("l".repeat(120)), "long");
    dir(&upper.join("new/deep"));
    file(&upper.join("new/deep/file"), "deep");
    fs::remove_file(upper.join("p/q/old")).unwrap();
    fs::remove_file(upper.join("rm.txt")).unwrap();
    // Same size and whole-second mtimes: only the target or the content tells.
    fs::remove_file(upper.join("same/link")).unwrap();
    symlink("bbbb", upper.join("same/link")).unwrap();
    set_mtime(&upper.join("same/link"), 1_000_000, 0);
    file(&upper.join("same/trunc"), "2222");
    set_mtime(&upper.join("same/trunc"), 1_000_000, 0);
    // Same content, but the nanoseconds say it was written again.
    set_mtime(&upper.join("same/nanos"), 1_000_000, 5);
    fs::remove_file(upper.join("type")).unwrap();
    dir(&upper.join("type"));
    file(&upper.join("type/inner"), "in");
}

#[test]
fn every_kind_of_change_is_written_in_order() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let (lower, upper) = (tmp.path().join("lower"), tmp.path().join("upper"));
    build_lower(&lower);
    copy_tree(&lower, &upper);
    change_upper(&upper);

    let (layer, written) = diff(&lower, &upper, DiffCompression::None);
    let long = "l".repeat(120);
    let expected = vec![
        "dir a/ 755 0:0".to_string(),
        r#"file a/x 644 0:0 "x""#.into(),
        r#"file a.b 644 0:0 "ab""#.into(),
        r#"file cap 644 0:0 xattr:security.capability=[1, 0, 0, 2, 0, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] "cap""#.into(),
        r#"file d2 644 0:0 "now a file""#.into(),
        "dir dev/ 755 0:0".into(),
        "char dev/cdev 644 0:0 dev=1,3".into(),
        "fifo dev/fifo 644 0:0".into(),
        "dir etc/ 755 0:0".into(),
        r#"file etc/conf 644 0:0 "a=22""#.into(),
        r#"file etc/mode 4755 0:0 "a=1""#.into(),
        r#"file etc/owner 644 1000:1000 "a=1""#.into(),
        "file .wh.gone 0 0:0".into(),
        "dir hl/ 755 0:0".into(),
        r#"file hl/c 644 0:0 "linked""#.into(),
        "link hl/a 644 0:0 -> hl/c".into(),
        "link hl/b 644 0:0 -> hl/c".into(),
        "dir long/ 755 0:0".into(),
        format!(r#"file long/{long} 644 0:0 "long""#),
        "dir new/ 755 0:0".into(),
        "dir new/deep/ 755 0:0".into(),
        r#"file new/deep/file 644 0:0 "deep""#.into(),
        "dir p/ 755 0:0".into(),
        "dir p/q/ 755 0:0".into(),
        "file p/q/.wh.old 0 0:0".into(),
        "file .wh.rm.txt 0 0:0".into(),
        "dir same/ 755 0:0".into(),
        "symlink same/link 777 0:0 -> bbbb".into(),
        r#"file same/nanos 644 0:0 "5555""#.into(),
        r#"file same/trunc 644 0:0 "2222""#.into(),
        "dir type/ 755 0:0".into(),
        r#"file type/inner 644 0:0 "in""#.into(),
    ];
    assert_eq!(entries(&layer), expected);

    assert_eq!(written.diff_id, sha256(&layer));
    assert_eq!(written.uncompressed_size, layer.len() as u64);
    assert_eq!(written.compressed_digest, written.diff_id);
    assert_eq!(written.compressed_size, written.uncompressed_size);
}

#[test]
fn headers_are_ustar_unless_pax_is_needed() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let (lower, upper) = (tmp.path().join("lower"), tmp.path().join("upper"));
    dir(&lower);
    dir(&upper);
    file(&upper.join("short"), "s");
    set_mtime(&upper.join("short"), 1_000_000, 999_999_999);
    file(&upper.join("l".repeat(120)), "long");

    let (layer, _) = diff(&lower, &upper, DiffCompression::None);
    let blocks: Vec<&[u8]> = layer.chunks(512).collect();
    // A PAX header with the whole name, then the entry with the name cut to 100 bytes.
    assert_eq!(blocks[0][156], b'x');
    assert_eq!(&blocks[0][..13], b"PaxHeaders.0/");
    assert!(blocks[1].starts_with(b"130 path=llll"));
    assert_eq!(blocks[2][156], b'0');
    assert_eq!(&blocks[2][..100], "l".repeat(100).as_bytes());
    // A name that fits: plain USTAR, the mtime cut to seconds, Go's checksum layout.
    assert_eq!(blocks[4][156], b'0');
    assert_eq!(&blocks[4][..6], b"short\0");
    assert_eq!(&blocks[4][257..265], b"ustar\x0000");
    assert_eq!(
        &blocks[4][136..148],
        format!("{:011o}\0", 1_000_000).as_bytes()
    );
    assert_eq!(&blocks[4][154..156], b"\0 ");
    // Empty user and group names.
    assert!(blocks[4][265..329].iter().all(|&b| b == 0));
    assert_eq!(
        blocks.len(),
        8,
        "pax, its records, header, content, header, content, end"
    );
}

#[test]
fn what_ustar_cannot_hold_goes_in_pax_records() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let (lower, upper) = (tmp.path().join("lower"), tmp.path().join("upper"));
    dir(&lower);
    dir(&upper);
    file(&upper.join("big-ids"), "");
    lchown(upper.join("big-ids"), Some(3_000_000), Some(4_000_000)).unwrap();
    let target = "t".repeat(150);
    symlink(&target, upper.join("long-target")).unwrap();
    file(&upper.join("é"), "");

    let (layer, _) = diff(&lower, &upper, DiffCompression::None);
    let mut archive = tar::Archive::new(layer.as_slice());
    let mut seen = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut records: Vec<String> = entry
            .pax_extensions()
            .unwrap()
            .unwrap()
            .map(|r| r.unwrap().key().unwrap().to_string())
            .collect();
        records.sort();
        let name = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
        match name.as_str() {
            "big-ids" => {
                assert_eq!(entry.header().uid().unwrap(), 3_000_000);
                assert_eq!(entry.header().gid().unwrap(), 4_000_000);
            }
            "long-target" => {
                let link = entry.link_name_bytes().unwrap().into_owned();
                assert_eq!(link, target.as_bytes());
            }
            _ => {}
        }
        seen.push(format!("{name} {records:?}"));
    }
    assert_eq!(
        seen,
        [
            r#"big-ids ["gid", "uid"]"#,
            r#"long-target ["linkpath"]"#,
            r#"é ["path"]"#,
        ]
    );
}

#[test]
fn identical_trees_give_the_empty_layer() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let (lower, upper) = (tmp.path().join("lower"), tmp.path().join("upper"));
    build_lower(&lower);
    copy_tree(&lower, &upper);

    let (layer, written) = diff(&lower, &upper, DiffCompression::None);
    assert_eq!(layer, vec![0; 1024]);
    assert_eq!(written.diff_id, EMPTY_LAYER);

    let (gz, written) = diff(&lower, &upper, DiffCompression::Gzip);
    assert_eq!(written.diff_id, EMPTY_LAYER);
    assert_eq!(written.uncompressed_size, 1024);
    assert_eq!(gunzip(&gz), vec![0; 1024]);
}

#[test]
fn a_deleted_directory_is_one_whiteout() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let (lower, upper) = (tmp.path().join("lower"), tmp.path().join("upper"));
    dir(&lower.join("keep/gone/deeper"));
    file(&lower.join("keep/gone/a"), "a");
    file(&lower.join("keep/gone/deeper/b"), "b");
    copy_tree(&lower, &upper);
    fs::remove_dir_all(upper.join("keep/gone")).unwrap();

    let (layer, _) = diff(&lower, &upper, DiffCompression::None);
    assert_eq!(
        entries(&layer),
        ["dir keep/ 755 0:0", "file keep/.wh.gone 0 0:0"]
    );
}

#[test]
fn gzip_holds_the_same_tar_and_both_digests_are_right() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let (lower, upper) = (tmp.path().join("lower"), tmp.path().join("upper"));
    build_lower(&lower);
    copy_tree(&lower, &upper);
    change_upper(&upper);

    let (plain, plain_written) = diff(&lower, &upper, DiffCompression::None);
    let (gz, written) = diff(&lower, &upper, DiffCompression::Gzip);
    assert_eq!(gunzip(&gz), plain);
    assert_eq!(written.diff_id, sha256(&plain));
    assert_eq!(written.diff_id, plain_written.diff_id);
    assert_eq!(written.uncompressed_size, plain.len() as u64);
    assert_eq!(written.compressed_digest, sha256(&gz));
    assert_eq!(written.compressed_size, gz.len() as u64);
    assert_ne!(written.compressed_digest, written.diff_id);
}

#[test]
fn the_same_trees_give_the_same_bytes() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let (lower, upper) = (tmp.path().join("lower"), tmp.path().join("upper"));
    build_lower(&lower);
    copy_tree(&lower, &upper);
    change_upper(&upper);

    let (first, _) = diff(&lower, &upper, DiffCompression::None);
    // Whiteouts are stamped with a fixed time, not the time of the diff.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (second, _) = diff(&lower, &upper, DiffCompression::None);
    assert!(first == second, "two diffs of the same trees differ");
}

#[test]
fn a_large_file_is_copied_whole() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let (lower, upper) = (tmp.path().join("lower"), tmp.path().join("upper"));
    dir(&lower);
    dir(&upper);
    // More than the 1 MiB copy buffer, not a multiple of the block size.
    let content: Vec<u8> = (0..3_000_001u32).map(|i| (i % 251) as u8).collect();
    fs::write(upper.join("big"), &content).unwrap();

    let (layer, _) = diff(&lower, &upper, DiffCompression::None);
    let mut archive = tar::Archive::new(layer.as_slice());
    let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
    let mut read = Vec::new();
    entry.read_to_end(&mut read).unwrap();
    assert!(read == content, "content differs");
    assert_eq!(layer.len(), 512 + 3_000_001usize.div_ceil(512) * 512 + 1024);
}

#[test]
fn a_missing_tree_is_a_read_error() {
    let tmp = tempfile::tempdir().unwrap();
    let err = write_diff(
        &tmp.path().join("nope"),
        tmp.path(),
        io::sink(),
        DiffCompression::None,
    )
    .unwrap_err();
    assert!(
        matches!(&err, super::DiffError::Read { path, .. } if path.ends_with("nope")),
        "{err:?}"
    );
}

fn gunzip(gz: &[u8]) -> Vec<u8> {
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut plain)
        .unwrap();
    plain
}
