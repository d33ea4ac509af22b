//! Moving a staged layer into its target: the same tree as applying there, or a refusal that
//! changes nothing.

use super::*;
use crate::apply::{adopt, Footprint, NotAdopted};

/// Applies `tar` into a fresh staging directory (overlay layout, no lowers), as early unpack
/// does.
fn stage(tar: &[u8], dir: &Path) -> Applied {
    fs::create_dir(dir).unwrap();
    apply(
        tar,
        Compression::None,
        Target::Overlay {
            upper: dir,
            lowers: Vec::new(),
        },
    )
    .unwrap()
}

/// A layer with a `./` member of its own mode, owner and time, files, a link and an xattr.
fn rooted_layer() -> Vec<u8> {
    let mut layer = Layer::new();
    layer.push(
        Layer::header(EntryType::Directory, "./", "", 0o750),
        b"",
        |h| {
            h.set_uid(7);
            h.set_gid(8);
            h.set_mtime(1_500_000_000);
        },
    );
    layer
        .pax(&[("SCHILY.xattr.user.k", b"v")])
        .dir("d")
        .file("d/f", b"data")
        .hard_link("d/g", "d/f")
        .symlink("s", "/d/f");
    layer.bytes()
}

#[test]
fn an_adopted_layer_is_the_tree_an_apply_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let layer = rooted_layer();
    let applied_dir = tmp.path().join("applied");
    fs::create_dir(&applied_dir).unwrap();
    let applied = apply_plain(&layer, &applied_dir).unwrap();

    let staged = tmp.path().join("staged");
    let staging = stage(&layer, &staged);
    assert_eq!(staging.diff_id, applied.diff_id);
    assert_eq!(
        staging.footprint,
        Footprint {
            root_meta: true,
            whiteouts: false,
            implicit_dirs: false
        }
    );
    let target = tmp.path().join("target");
    fs::create_dir(&target).unwrap();
    adopt(&staged, &Target::Plain(&target), staging.footprint)
        .unwrap()
        .unwrap();

    assert_eq!(tree(&target), tree(&applied_dir));
    assert_eq!(tree(&staged), Vec::<String>::new(), "everything moved");
    for rel in ["", "d", "d/f", "s"] {
        let (a, b) = (applied_dir.join(rel), target.join(rel));
        assert_eq!(mode(&a), mode(&b), "{rel}");
        assert_eq!(owner(&a), owner(&b), "{rel}");
        assert_eq!(mtime(&a), mtime(&b), "{rel}");
    }
    assert_eq!((mode(&target), owner(&target)), (0o750, (7, 8)));
    assert_eq!(
        xattr(&target.join("d"), "user.k").as_deref(),
        Some(&b"v"[..])
    );
    let same_inode =
        |p: &Path, q: &Path| fs::metadata(p).unwrap().ino() == fs::metadata(q).unwrap().ino();
    assert!(same_inode(&target.join("d/f"), &target.join("d/g")));
}

#[test]
fn a_layer_without_a_root_member_leaves_the_target_root_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let mut layer = Layer::new();
    layer.dir("d").file("d/f", b"x");
    let staged = tmp.path().join("staged");
    let staging = stage(&layer.bytes(), &staged);
    assert!(!staging.footprint.root_meta);
    let target = tmp.path().join("target");
    fs::create_dir(&target).unwrap();
    fs::set_permissions(&target, fs::Permissions::from_mode(0o711)).unwrap();
    adopt(&staged, &Target::Plain(&target), staging.footprint)
        .unwrap()
        .unwrap();
    assert_eq!(mode(&target), 0o711);
    assert_eq!(fs::read(target.join("d/f")).unwrap(), b"x");
}

#[test]
fn refusals_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    // Whiteouts: a plain target deletes where the staging marked.
    let mut layer = Layer::new();
    layer.dir("d").file("d/.wh.x", b"").file("d/y", b"y");
    let staged = tmp.path().join("whiteouts");
    let staging = stage(&layer.bytes(), &staged);
    assert!(staging.footprint.whiteouts);
    let target = tmp.path().join("t1");
    fs::create_dir(&target).unwrap();
    let answer = adopt(&staged, &Target::Plain(&target), staging.footprint).unwrap();
    assert_eq!(answer, Err(NotAdopted::Footprint));
    assert!(tree(&target).is_empty());
    assert_eq!(tree(&staged), vec!["d", "d/x", "d/y"]);
    // ... but an overlay upper dir takes them as they are.
    adopt(
        &staged,
        &Target::Overlay {
            upper: &target,
            lowers: Vec::new(),
        },
        staging.footprint,
    )
    .unwrap()
    .unwrap();
    assert_eq!(tree(&target), vec!["d", "d/x", "d/y"]);

    // Directories the layer does not list: an overlay target copies them from its lowers.
    let mut layer = Layer::new();
    layer.file("a/b/c", b"c");
    let staged = tmp.path().join("implicit");
    let staging = stage(&layer.bytes(), &staged);
    assert!(staging.footprint.implicit_dirs);
    let upper = tmp.path().join("t2");
    fs::create_dir(&upper).unwrap();
    let overlay = Target::Overlay {
        upper: &upper,
        lowers: Vec::new(),
    };
    let answer = adopt(&staged, &overlay, staging.footprint).unwrap();
    assert_eq!(answer, Err(NotAdopted::Footprint));
    assert!(tree(&upper).is_empty());

    // A target that is not empty.
    fs::write(upper.join("there"), b"").unwrap();
    let answer = adopt(&staged, &Target::Plain(&upper), staging.footprint).unwrap();
    assert_eq!(answer, Err(NotAdopted::TargetNotEmpty));
    assert_eq!(tree(&upper), vec!["there"]);
    assert_eq!(tree(&staged), vec!["a", "a/b", "a/b/c"]);
}

#[test]
fn another_file_system_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut layer = Layer::new();
    layer.file("f", b"f");
    let staged = tmp.path().join("staged");
    let staging = stage(&layer.bytes(), &staged);
    // /dev/shm is a tmpfs of its own (the temp dir is not, or is another one).
    let other = tempfile::tempdir_in("/dev/shm").unwrap();
    let same = fs::metadata(&staged).unwrap().dev() == fs::metadata(other.path()).unwrap().dev();
    assert!(
        !same,
        "the test needs /dev/shm on another file system than the temp dir"
    );
    let answer = adopt(&staged, &Target::Plain(other.path()), staging.footprint).unwrap();
    assert_eq!(answer, Err(NotAdopted::OtherFileSystem));
    assert_eq!(tree(&staged), vec!["f"]);
}
