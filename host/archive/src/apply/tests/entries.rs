//! Member types, metadata, replacement and Plain whiteouts.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use tar::EntryType;

use super::*;

#[test]
fn writes_every_member_type() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut layer = Layer::new();
    layer
        .dir("d/")
        .file("d/f", b"hello")
        .symlink("d/s", "f")
        .hard_link("d/h", "d/f")
        .push(
            Layer::header(EntryType::Char, "d/null", "", 0o666),
            b"",
            |h| {
                h.set_device_major(1).unwrap();
                h.set_device_minor(3).unwrap();
            },
        )
        .push(
            Layer::header(EntryType::Block, "d/loop", "", 0o660),
            b"",
            |h| {
                h.set_device_major(7).unwrap();
                h.set_device_minor(42).unwrap();
            },
        )
        .push(
            Layer::header(EntryType::Fifo, "d/fifo", "", 0o600),
            b"",
            |_| {},
        )
        // No entry for `implicit/`: created 0755.
        .file("implicit/g", b"");
    let tar = layer.bytes();
    let applied = apply_plain(&tar, root).unwrap();
    assert_eq!(applied.entries, 8);
    assert_eq!(fs::read(root.join("d/f")).unwrap(), b"hello");
    assert_eq!(fs::read_link(root.join("d/s")).unwrap(), Path::new("f"));
    let f = fs::metadata(root.join("d/f")).unwrap();
    let h = fs::metadata(root.join("d/h")).unwrap();
    assert_eq!((f.ino(), f.nlink()), (h.ino(), 2));
    let null = fs::symlink_metadata(root.join("d/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
    assert_eq!(mode(&root.join("d/null")), 0o666);
    let blk = fs::symlink_metadata(root.join("d/loop")).unwrap();
    assert!(blk.file_type().is_block_device());
    assert_eq!(blk.rdev(), rustix::fs::makedev(7, 42));
    assert!(fs::symlink_metadata(root.join("d/fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    assert_eq!(mode(&root.join("d/fifo")), 0o600);
    assert_eq!(mode(&root.join("implicit")), 0o755);
}

#[test]
fn keeps_ownership_and_special_mode_bits() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let ids = |uid, gid| {
        move |h: &mut tar::Header| {
            h.set_uid(uid);
            h.set_gid(gid);
        }
    };
    let mut layer = Layer::new();
    layer
        .push(
            Layer::header(EntryType::Directory, "sticky/", "", 0o1777),
            b"",
            ids(0, 0),
        )
        .push(
            Layer::header(EntryType::Directory, "sgid/", "", 0o2750),
            b"",
            ids(1001, 1002),
        )
        // Owned by a user, with setuid: the chown must come before the chmod, or it clears it.
        .push(
            Layer::header(EntryType::Regular, "suid", "", 0o4755),
            b"#!",
            ids(1000, 1000),
        )
        .push(
            Layer::header(EntryType::Regular, "sgidfile", "", 0o2711),
            b"",
            ids(0, 50),
        )
        .push(
            Layer::header(EntryType::Symlink, "link", "suid", 0o777),
            b"",
            ids(1234, 5678),
        )
        .push(
            Layer::header(EntryType::Fifo, "fifo", "", 0o640),
            b"",
            ids(7, 8),
        );
    apply_plain(&layer.bytes(), root).unwrap();
    assert_eq!(mode(&root.join("sticky")), 0o1777);
    assert_eq!(
        (mode(&root.join("sgid")), owner(&root.join("sgid"))),
        (0o2750, (1001, 1002))
    );
    assert_eq!(
        (mode(&root.join("suid")), owner(&root.join("suid"))),
        (0o4755, (1000, 1000))
    );
    assert_eq!(
        (mode(&root.join("sgidfile")), owner(&root.join("sgidfile"))),
        (0o2711, (0, 50))
    );
    assert_eq!(owner(&root.join("link")), (1234, 5678));
    assert_eq!(
        (mode(&root.join("fifo")), owner(&root.join("fifo"))),
        (0o640, (7, 8))
    );
}

#[test]
fn pax_records_give_large_ids_nanosecond_times_and_xattrs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut layer = Layer::new();
    layer
        .pax(&[
            ("mtime", b"1700000000.123456789"),
            ("SCHILY.xattr.trusted.dir", b"d"),
        ])
        .dir("d/")
        .pax(&[
            ("mtime", b"1700000001.5"),
            ("atime", b"1700000002.25"),
            ("uid", b"3000000000"),
            ("gid", b"3000000001"),
            ("SCHILY.xattr.user.k", b"v"),
            ("SCHILY.xattr.trusted.t", b"\x00\x01bin"),
            // overlayfs' own: dropped.
            ("SCHILY.xattr.trusted.overlay.opaque", b"y"),
        ])
        .file("d/f", b"x")
        .pax(&[
            ("mtime", b"1500000000.000000007"),
            ("SCHILY.xattr.trusted.s", b"on a symlink"),
        ])
        .symlink("d/s", "f")
        // Written after d's metadata: the directory's time must still be the PAX one.
        .file("d/later", b"y");
    apply_plain(&layer.bytes(), root).unwrap();
    let f = root.join("d/f");
    assert_eq!(mtime(&f), (1_700_000_001, 500_000_000));
    let m = fs::metadata(&f).unwrap();
    assert_eq!((m.atime(), m.atime_nsec()), (1_700_000_002, 250_000_000));
    assert_eq!(owner(&f), (3_000_000_000, 3_000_000_001));
    assert_eq!(xattr(&f, "user.k").as_deref(), Some(&b"v"[..]));
    assert_eq!(xattr(&f, "trusted.t").as_deref(), Some(&b"\x00\x01bin"[..]));
    assert_eq!(xattr(&f, "trusted.overlay.opaque"), None);
    assert_eq!(mtime(&root.join("d/s")), (1_500_000_000, 7));
    assert_eq!(
        xattr(&root.join("d/s"), "trusted.s").as_deref(),
        Some(&b"on a symlink"[..])
    );
    assert_eq!(mtime(&root.join("d")), (1_700_000_000, 123_456_789));
    assert_eq!(
        xattr(&root.join("d"), "trusted.dir").as_deref(),
        Some(&b"d"[..])
    );
    // USTAR time, atime = mtime.
    let later = fs::metadata(root.join("d/later")).unwrap();
    assert_eq!(
        (later.mtime(), later.mtime_nsec(), later.atime()),
        (MTIME as i64, 0, MTIME as i64)
    );
}

#[test]
fn root_member_sets_the_roots_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    fs::create_dir(&root).unwrap();
    let mut layer = Layer::new();
    layer
        .push(
            Layer::header(EntryType::Directory, "./", "", 0o711),
            b"",
            |h| h.set_uid(5),
        )
        .file("f", b"");
    apply_plain(&layer.bytes(), &root).unwrap();
    assert_eq!(
        (mode(&root), owner(&root).0, mtime(&root).0),
        (0o711, 5, MTIME as i64)
    );

    let err = apply_plain(&Layer::new().file("./", b"").bytes(), &root).unwrap_err();
    assert!(matches!(err, ApplyError::InvalidEntry { .. }), "{err}");
}

#[test]
fn existing_objects_of_another_type_are_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir_all(root.join("was_dir/sub/deeper")).unwrap();
    fs::write(root.join("was_dir/sub/deeper/x"), b"old").unwrap();
    fs::write(root.join("was_file"), b"old").unwrap();
    std::os::unix::fs::symlink("/etc", root.join("was_link")).unwrap();
    fs::create_dir(root.join("merged")).unwrap();
    fs::write(root.join("merged/kept"), b"old").unwrap();
    fs::write(root.join("overwritten"), b"a much longer old content").unwrap();
    let mut layer = Layer::new();
    layer
        .file("was_dir", b"now a file")
        .dir("was_file/")
        .dir("was_link/")
        .file("was_link/inside", b"")
        .push(
            Layer::header(EntryType::Directory, "merged/", "", 0o700),
            b"",
            |_| {},
        )
        .file("merged/new", b"")
        .file("overwritten", b"new");
    apply_plain(&layer.bytes(), root).unwrap();
    assert_eq!(fs::read(root.join("was_dir")).unwrap(), b"now a file");
    assert!(fs::symlink_metadata(root.join("was_file"))
        .unwrap()
        .is_dir());
    assert!(fs::symlink_metadata(root.join("was_link"))
        .unwrap()
        .is_dir());
    assert!(root.join("was_link/inside").exists());
    assert_eq!(fs::read(root.join("merged/kept")).unwrap(), b"old");
    assert!(root.join("merged/new").exists());
    assert_eq!(mode(&root.join("merged")), 0o700);
    assert_eq!(fs::read(root.join("overwritten")).unwrap(), b"new");
}

#[test]
fn hard_links_replace_and_tolerate_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::write(root.join("other"), b"old").unwrap();
    let mut layer = Layer::new();
    layer
        .file("target", b"t")
        .hard_link("other", "target")
        .hard_link("other", "./target")
        .symlink("sym", "target")
        // A hard link to a symlink links the symlink itself.
        .hard_link("sym2", "sym");
    apply_plain(&layer.bytes(), root).unwrap();
    let ino = |p: &str| fs::symlink_metadata(root.join(p)).unwrap().ino();
    assert_eq!(ino("other"), ino("target"));
    assert_eq!(ino("sym2"), ino("sym"));
    assert!(fs::symlink_metadata(root.join("sym2"))
        .unwrap()
        .file_type()
        .is_symlink());

    let missing = apply_plain(&Layer::new().hard_link("x", "nowhere").bytes(), root).unwrap_err();
    assert!(matches!(missing, ApplyError::Entry { .. }), "{missing}");
}

#[test]
fn plain_whiteouts_delete() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir_all(root.join("a/tree/sub")).unwrap();
    fs::write(root.join("a/tree/sub/f"), b"").unwrap();
    fs::write(root.join("a/file"), b"").unwrap();
    fs::write(root.join("a/kept"), b"").unwrap();
    let mut layer = Layer::new();
    layer
        .file("a/.wh.file", b"")
        .file("a/.wh.tree", b"")
        .file("a/.wh.absent", b"")
        .file("absentdir/.wh.x", b"")
        .file("a/.wh..wh.plnk", b"");
    apply_plain(&layer.bytes(), root).unwrap();
    assert_eq!(tree(root), ["a", "a/kept"]);
}

#[test]
fn plain_opaque_directories_lose_what_lower_layers_had() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for p in ["d/old", "d/sub/old", "d/sub/deep/old", "e/old", "other/old"] {
        fs::create_dir_all(root.join(p).parent().unwrap()).unwrap();
        fs::write(root.join(p), b"").unwrap();
    }
    let mut layer = Layer::new();
    layer
        // Marker first, children after.
        .dir("d/")
        .file("d/.wh..wh..opq", b"")
        .dir("d/sub/")
        .file("d/sub/new", b"")
        // Children first, marker after: e/new stays, e/old goes.
        .dir("e/")
        .file("e/new", b"")
        .file("e/.wh..wh..opq", b"");
    apply_plain(&layer.bytes(), root).unwrap();
    assert_eq!(
        tree(root),
        [
            "d",
            "d/sub",
            "d/sub/new",
            "e",
            "e/new",
            "other",
            "other/old"
        ]
    );
}

#[test]
fn bad_names_and_types_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = apply_plain(&Layer::new().file("d/.wh..", b"").bytes(), dir.path()).unwrap_err();
    assert!(matches!(err, ApplyError::InvalidEntry { .. }), "{err}");
    let socket = Layer::new()
        .push(
            Layer::header(EntryType::new(b'9'), "s", "", 0o644),
            b"",
            |_| {},
        )
        .bytes();
    let err = apply_plain(&socket, dir.path()).unwrap_err();
    assert!(
        matches!(err, ApplyError::UnsupportedEntry { kind: b'9', .. }),
        "{err}"
    );
    assert_eq!(err.to_string(), "/s: unsupported tar entry type 0x39");
}

#[test]
fn media_types() {
    let cases = [
        ("application/vnd.oci.image.layer.v1.tar", Compression::None),
        (
            "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Gzip,
        ),
        (
            "application/vnd.oci.image.layer.v1.tar+zstd",
            Compression::Zstd,
        ),
        (
            "application/vnd.oci.image.layer.nondistributable.v1.tar",
            Compression::None,
        ),
        (
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            Compression::Gzip,
        ),
        (
            "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
            Compression::Zstd,
        ),
        (
            "application/vnd.docker.image.rootfs.diff.tar",
            Compression::None,
        ),
        (
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            Compression::Gzip,
        ),
        (
            "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
            Compression::Gzip,
        ),
    ];
    for (mt, c) in cases {
        assert_eq!(Compression::from_media_type(mt).unwrap(), c, "{mt}");
    }
    let err =
        Compression::from_media_type("application/vnd.oci.image.layer.v1.tar+bzip2").unwrap_err();
    assert_eq!(
        err.to_string(),
        "unsupported diff media type: application/vnd.oci.image.layer.v1.tar+bzip2"
    );
}

#[test]
fn empty_numeric_fields_read_as_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mut layer = Layer::new();
    layer.push(
        Layer::header(EntryType::Regular, "f", "", 0o640),
        b"x",
        |h| {
            let old = h.as_old_mut();
            old.uid = [0; 8];
            old.gid = [b' '; 8];
            old.mtime = [0; 12];
        },
    );
    apply_plain(&layer.bytes(), dir.path()).unwrap();
    let f = dir.path().join("f");
    assert_eq!((mode(&f), owner(&f), mtime(&f)), (0o640, (0, 0), (0, 0)));
}

/// chown(2) drops file capabilities, so they must go on after the owner.
#[test]
fn file_capabilities_survive_the_chown() {
    let dir = tempfile::tempdir().unwrap();
    // vfs_cap_data, revision 2, effective, permitted = CAP_NET_RAW (13).
    let mut cap = Vec::new();
    cap.extend_from_slice(&0x0200_0001u32.to_le_bytes());
    cap.extend_from_slice(&(1u32 << 13).to_le_bytes());
    cap.extend_from_slice(&[0; 12]);
    let mut layer = Layer::new();
    layer
        .pax(&[("SCHILY.xattr.security.capability", &cap)])
        .push(
            Layer::header(EntryType::Regular, "ping", "", 0o4755),
            b"elf",
            |h| {
                h.set_uid(1000);
                h.set_gid(1000);
            },
        );
    apply_plain(&layer.bytes(), dir.path()).unwrap();
    let ping = dir.path().join("ping");
    assert_eq!(xattr(&ping, "security.capability"), Some(cap));
    assert_eq!((mode(&ping), owner(&ping)), (0o4755, (1000, 1000)));
}
