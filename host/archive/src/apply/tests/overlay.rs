//! Applying into an overlayfs upper dir, checked on disk and through a real overlay mount.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::PathBuf;

use rustix::mount::{mount, unmount, MountFlags, UnmountFlags};

use super::*;

/// Unmounts on drop, so a failing assertion leaves no mount behind.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = unmount(&self.0, UnmountFlags::DETACH);
    }
}

fn mount_overlay(lowers: &[&Path], upper: &Path, work: &Path, merged: &Path) -> Mounted {
    let lowerdir: Vec<String> = lowers.iter().map(|l| l.display().to_string()).collect();
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lowerdir.join(":"),
        upper.display(),
        work.display()
    );
    let data = std::ffi::CString::new(data).unwrap();
    mount(
        "overlay",
        merged,
        "overlay",
        MountFlags::empty(),
        data.as_c_str(),
    )
    .unwrap();
    Mounted(merged.to_path_buf())
}

/// lower: d/ (0711, uid 42, user.k=v, and itself opaque in its own stack), d/f1, d/f2, e/x,
/// h (a file hard-linked by the layer), gone/ (whited out in a middle layer).
fn make_lower(lower: &Path) {
    fs::create_dir_all(lower.join("d")).unwrap();
    fs::write(lower.join("d/f1"), b"f1").unwrap();
    fs::write(lower.join("d/f2"), b"f2").unwrap();
    let d = lower.join("d");
    fs::set_permissions(&d, fs::Permissions::from_mode(0o711)).unwrap();
    std::os::unix::fs::lchown(&d, Some(42), Some(43)).unwrap();
    rustix::fs::lsetxattr(&d, "user.k", b"v", rustix::fs::XattrFlags::empty()).unwrap();
    rustix::fs::lsetxattr(
        &d,
        "trusted.overlay.opaque",
        b"y",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    let times = fs::FileTimes::new()
        .set_modified(std::time::UNIX_EPOCH + std::time::Duration::new(1_234_567_890, 5));
    fs::File::open(&d).unwrap().set_times(times).unwrap();
    fs::create_dir_all(lower.join("e")).unwrap();
    fs::write(lower.join("e/x"), b"x").unwrap();
    fs::write(lower.join("h"), b"hard").unwrap();
    std::os::unix::fs::lchown(lower.join("h"), Some(7), Some(8)).unwrap();
    rustix::fs::lsetxattr(
        lower.join("h"),
        "user.h",
        b"1",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
}

#[test]
fn overlay_whiteouts_opaque_dirs_copied_up_parents_and_links() {
    let tmp = tempfile::tempdir().unwrap();
    let [lower, upper, work, merged] = ["lower", "upper", "work", "merged"].map(|n| {
        let p = tmp.path().join(n);
        fs::create_dir(&p).unwrap();
        p
    });
    make_lower(&lower);
    let before = tree(&lower);

    let mut layer = Layer::new();
    layer
        // No `d/` member: d is created in the upper with the lower's metadata.
        .file("d/.wh.f1", b"")
        .file("d/new", b"new")
        .dir("e/")
        .file("e/.wh..wh..opq", b"")
        .file("e/y", b"y")
        .hard_link("h2", "h")
        .file(".wh.absent", b"");
    let applied = apply(
        &layer.bytes()[..],
        Compression::None,
        Target::Overlay {
            upper: &upper,
            lowers: vec![lower.clone()],
        },
    )
    .unwrap();
    assert_eq!(applied.entries, 7);
    // The lower is read only.
    assert_eq!(tree(&lower), before);

    // On disk, the overlayfs way.
    let wh = fs::symlink_metadata(upper.join("d/f1")).unwrap();
    assert!(wh.file_type().is_char_device());
    assert_eq!(wh.rdev(), 0);
    assert!(fs::symlink_metadata(upper.join("absent"))
        .unwrap()
        .file_type()
        .is_char_device());
    let d = upper.join("d");
    assert_eq!((mode(&d), owner(&d)), (0o711, (42, 43)));
    assert_eq!(mtime(&d), (1_234_567_890, 5));
    assert_eq!(xattr(&d, "user.k").as_deref(), Some(&b"v"[..]));
    // The lower's own opaque flag is not copied: it would hide d/f2.
    assert_eq!(xattr(&d, "trusted.overlay.opaque"), None);
    assert_eq!(
        xattr(&upper.join("e"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert!(!upper.join("d/f2").exists());
    // The hard link's target was copied up, with its xattrs, and linked there; then the link
    // member's own owner and mode went onto the shared inode, as containerd applies them.
    let (h, h2) = (upper.join("h"), upper.join("h2"));
    assert_eq!(
        fs::metadata(&h).unwrap().ino(),
        fs::metadata(&h2).unwrap().ino()
    );
    assert_eq!(fs::read(&h2).unwrap(), b"hard");
    assert_eq!(owner(&h), (0, 0));
    assert_eq!(mode(&h), 0o644);
    assert_eq!(xattr(&h, "user.h").as_deref(), Some(&b"1"[..]));

    // Through a real mount.
    let _mounted = mount_overlay(&[&lower], &upper, &work, &merged);
    assert_eq!(tree(&merged), ["d", "d/f2", "d/new", "e", "e/y", "h", "h2"]);
    assert_eq!(fs::read(merged.join("d/f2")).unwrap(), b"f2");
    assert_eq!(fs::read(merged.join("h2")).unwrap(), b"hard");
}

#[test]
fn overlay_lowers_are_searched_top_down_and_whiteouts_hide_deeper_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let [top, bottom, upper, work, merged] =
        ["top", "bottom", "upper", "work", "merged"].map(|n| {
            let p = tmp.path().join(n);
            fs::create_dir(&p).unwrap();
            p
        });
    // bottom: p/ (0700) and t; top: p/ (0750) and a whiteout of t.
    fs::create_dir(bottom.join("p")).unwrap();
    fs::set_permissions(bottom.join("p"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::write(bottom.join("t"), b"t").unwrap();
    fs::create_dir(top.join("p")).unwrap();
    fs::set_permissions(top.join("p"), fs::Permissions::from_mode(0o750)).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        top.join("t"),
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::empty(),
        0,
    )
    .unwrap();
    let target = |upper| Target::Overlay {
        upper,
        lowers: vec![top.clone(), bottom.clone()],
    };
    // u in both lowers, q/h only in the bottom one.
    fs::write(top.join("u"), b"top").unwrap();
    fs::write(bottom.join("u"), b"bottom").unwrap();
    fs::create_dir(bottom.join("q")).unwrap();
    fs::set_permissions(bottom.join("q"), fs::Permissions::from_mode(0o705)).unwrap();
    fs::write(bottom.join("q/h"), b"deep").unwrap();
    let mut layer = Layer::new();
    layer
        .file("p/new", b"")
        .hard_link("u_link", "u")
        .hard_link("h_link", "q/h")
        .file("mine", b"upper")
        .hard_link("mine_link", "mine");
    apply(
        &layer.bytes()[..],
        Compression::None,
        target(upper.as_path()),
    )
    .unwrap();
    assert_eq!(mode(&upper.join("p")), 0o750);
    // Lowers are searched top first; the copy-up's parent gets the lower's metadata.
    assert_eq!(fs::read(upper.join("u_link")).unwrap(), b"top");
    assert_eq!(fs::read(upper.join("h_link")).unwrap(), b"deep");
    assert_eq!(mode(&upper.join("q")), 0o705);
    let ino = |p: &str| fs::metadata(upper.join(p)).unwrap().ino();
    assert_eq!(ino("q/h"), ino("h_link"));
    // The upper first: the layer's own file, not a copy.
    assert_eq!(ino("mine"), ino("mine_link"));
    // t is whited out in the top lower: a link to it has no target.
    let err = apply(
        &Layer::new().hard_link("l", "t").bytes()[..],
        Compression::None,
        target(upper.as_path()),
    )
    .unwrap_err();
    assert!(matches!(err, ApplyError::Entry { .. }), "{err}");
    let _mounted = mount_overlay(&[&top, &bottom], &upper, &work, &merged);
    assert_eq!(
        tree(&merged),
        [
            "h_link",
            "mine",
            "mine_link",
            "p",
            "p/new",
            "q",
            "q/h",
            "u",
            "u_link"
        ]
    );
    assert_eq!(fs::read(merged.join("u")).unwrap(), b"top");
}

#[test]
fn overlay_lookups_in_lowers_respect_opaque_and_non_directory_ancestors() {
    let tmp = tempfile::tempdir().unwrap();
    let [top, bottom, upper] = ["top", "bottom", "upper"].map(|n| {
        let p = tmp.path().join(n);
        fs::create_dir(&p).unwrap();
        p
    });
    // top: o/ (opaque), w (a file); bottom: o/x, w/z, n/x, k/ (0701).
    fs::create_dir(top.join("o")).unwrap();
    rustix::fs::lsetxattr(
        top.join("o"),
        "trusted.overlay.opaque",
        b"y",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    fs::write(top.join("w"), b"").unwrap();
    for p in ["o/x", "w/z", "n/x"] {
        fs::create_dir_all(bottom.join(p).parent().unwrap()).unwrap();
        fs::write(bottom.join(p), b"hidden").unwrap();
    }
    fs::create_dir(bottom.join("k")).unwrap();
    fs::set_permissions(bottom.join("k"), fs::Permissions::from_mode(0o701)).unwrap();
    let apply_layer = |layer: &mut Layer| {
        apply(
            &layer.bytes()[..],
            Compression::None,
            Target::Overlay {
                upper: &upper,
                lowers: vec![top.clone(), bottom.clone()],
            },
        )
    };
    // Visible: k comes from the bottom lower, with its metadata.
    apply_layer(Layer::new().file("k/new", b"")).unwrap();
    assert_eq!(mode(&upper.join("k")), 0o701);
    // The layer makes n opaque in the upper: n/x below is hidden from then on.
    apply_layer(Layer::new().dir("n/").file("n/.wh..wh..opq", b"")).unwrap();
    for target in ["o/x", "w/z", "n/x"] {
        let err = apply_layer(Layer::new().hard_link("l", target)).unwrap_err();
        assert!(matches!(err, ApplyError::Entry { .. }), "{target}: {err}");
        assert!(
            fs::symlink_metadata(upper.join(target)).is_err(),
            "{target} copied up"
        );
    }
    assert!(fs::symlink_metadata(upper.join("l")).is_err());
    // Nor were their parents created for nothing.
    assert!(fs::symlink_metadata(upper.join("o")).is_err());
    assert!(fs::symlink_metadata(upper.join("w")).is_err());
}
