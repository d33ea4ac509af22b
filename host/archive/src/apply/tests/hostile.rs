//! Layers that try to reach outside the target. Each test applies into `<tmp>/root` and
//! checks that `<tmp>` outside `root` is exactly as before (and the host's /etc untouched).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use super::*;

/// `<tmp>/root` (the target) next to `<tmp>/victim` and `<tmp>/victimdir/victim`.
struct Arena {
    _tmp: tempfile::TempDir,
    outer: PathBuf,
    root: PathBuf,
    before: Vec<String>,
    passwd: (Vec<u8>, u64, i64),
}

impl Arena {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let outer = tmp.path().to_path_buf();
        let root = outer.join("root");
        fs::create_dir(&root).unwrap();
        fs::write(outer.join("victim"), b"victim").unwrap();
        fs::create_dir(outer.join("victimdir")).unwrap();
        fs::write(outer.join("victimdir/victim"), b"victim").unwrap();
        let before = Self::outside(&outer);
        Arena {
            _tmp: tmp,
            outer,
            root,
            before,
            passwd: passwd(),
        }
    }

    fn outside(outer: &Path) -> Vec<String> {
        tree(outer)
            .into_iter()
            .filter(|p| p != "root" && !p.starts_with("root/"))
            .collect()
    }

    /// Nothing appeared, vanished or changed outside the root.
    fn check(&self) {
        assert_eq!(Self::outside(&self.outer), self.before);
        for p in ["victim", "victimdir/victim"] {
            let m = fs::metadata(self.outer.join(p)).unwrap();
            assert_eq!(fs::read(self.outer.join(p)).unwrap(), b"victim", "{p}");
            assert_eq!(m.nlink(), 1, "{p}");
        }
        assert_eq!(passwd(), self.passwd);
        for p in ["/etc/escape", "/etc/pwned", "/escape"] {
            assert!(fs::symlink_metadata(p).is_err(), "{p} exists");
        }
    }

    fn apply(&self, layer: &mut Layer) -> Result<Applied, ApplyError> {
        apply_plain(&layer.bytes(), &self.root)
    }

    fn overlay(&self, layer: &mut Layer) -> Result<Applied, ApplyError> {
        apply(
            &layer.bytes()[..],
            Compression::None,
            Target::Overlay {
                upper: &self.root,
                lowers: vec![],
            },
        )
    }

    fn outer_str(&self, rel: &str) -> String {
        self.outer.join(rel).display().to_string()
    }
}

/// /etc/passwd's content, link count and modification time.
fn passwd() -> (Vec<u8>, u64, i64) {
    let m = fs::metadata("/etc/passwd").unwrap();
    (fs::read("/etc/passwd").unwrap(), m.nlink(), m.mtime())
}

/// Case 1: dot-dot and absolute names are confined: cleaned against the root.
#[test]
fn dot_dot_and_absolute_names_are_confined() {
    let arena = Arena::new();
    arena
        .apply(
            Layer::new()
                .file("../escape", b"1")
                .file("a/../../escape2", b"2")
                .file("/etc/escape", b"3")
                .file("../../../../victim", b"4")
                .dir("../victimdir/")
                .file("../victimdir/victim", b"5"),
        )
        .unwrap();
    arena.check();
    let read = |p: &str| fs::read(arena.root.join(p)).unwrap();
    assert_eq!(read("escape"), b"1");
    assert_eq!(read("escape2"), b"2");
    assert_eq!(read("etc/escape"), b"3");
    assert_eq!(read("victim"), b"4");
    assert_eq!(read("victimdir/victim"), b"5");
}

/// Case 2: members written through a symlink the layer made resolve inside the root, or are
/// refused when the symlink leads nowhere inside it.
#[test]
fn writes_through_symlinks_stay_inside() {
    let arena = Arena::new();
    let outer_dir = arena.outer_str("victimdir");
    arena
        .apply(
            Layer::new()
                .dir("etc/")
                .symlink("a", "/etc")
                .file("a/passwd", b"mine")
                .symlink("up", "../../..")
                .file("up/escape", b"up")
                .file("up/etc/pwned", b"up2")
                .symlink("rel", "../victimdir")
                .dir("victimdir/")
                .file("rel/victim", b"rel")
                .symlink("chain", "up/a")
                .file("chain/x", b"chain"),
        )
        .unwrap();
    arena.check();
    let read = |p: &str| fs::read(arena.root.join(p)).unwrap();
    assert_eq!(read("etc/passwd"), b"mine");
    assert_eq!(read("escape"), b"up");
    assert_eq!(read("etc/pwned"), b"up2");
    assert_eq!(read("victimdir/victim"), b"rel");
    assert_eq!(read("etc/x"), b"chain");
    assert!(fs::symlink_metadata(arena.root.join("a"))
        .unwrap()
        .is_symlink());

    // A symlink to an absolute path of a real outside directory, which does not exist inside
    // the root: refused, both for a file and for a directory member.
    for member in ["abs/victim", "abs/newdir/"] {
        let mut layer = Layer::new();
        layer.symlink("abs", &outer_dir);
        if member.ends_with('/') {
            layer.dir(member);
        } else {
            layer.file(member, b"pwned");
        }
        let err = arena.apply(&mut layer).unwrap_err();
        assert!(matches!(err, ApplyError::Entry { .. }), "{err}");
        arena.check();
        assert!(!arena.outer.join("victimdir/newdir").exists());
    }
}

/// Case 3: hard-link targets are cleaned and resolved inside the root too.
#[test]
fn hard_links_never_reach_outside_files() {
    let arena = Arena::new();
    for target in [
        "../../etc/passwd",
        "/etc/passwd",
        "../victim",
        "../victimdir/victim",
    ] {
        let err = arena
            .apply(Layer::new().hard_link("l", target))
            .unwrap_err();
        assert!(matches!(err, ApplyError::Entry { .. }), "{target}: {err}");
        arena.check();
        assert!(fs::symlink_metadata(arena.root.join("l")).is_err());
    }
    // Through a symlink the layer made: resolved inside the root.
    let outer_dir = arena.outer_str("victimdir");
    for (link, target) in [("s", "/etc"), ("s2", outer_dir.as_str())] {
        let err = arena
            .apply(
                Layer::new()
                    .symlink(link, target)
                    .hard_link("l", &format!("{link}/victim")),
            )
            .unwrap_err();
        assert!(matches!(err, ApplyError::Entry { .. }), "{err}");
        arena.check();
    }
    // With decoys inside the root, the links land on the decoys.
    arena
        .apply(
            Layer::new()
                .file("etc/passwd", b"decoy")
                .file("victim", b"decoy2")
                .hard_link("l1", "../../etc/passwd")
                .hard_link("l2", "/etc/passwd")
                .symlink("s3", "/etc")
                .hard_link("l3", "s3/passwd")
                .hard_link("l4", "../victim"),
        )
        .unwrap();
    arena.check();
    let ino = |p: &str| fs::metadata(arena.root.join(p)).unwrap().ino();
    for l in ["l1", "l2", "l3"] {
        assert_eq!(ino(l), ino("etc/passwd"), "{l}");
    }
    assert_eq!(ino("l4"), ino("victim"));
    assert_eq!(
        fs::metadata(arena.root.join("etc/passwd")).unwrap().nlink(),
        4
    );
}

/// Case 4: whiteouts naming outside paths delete nothing outside, in both layouts.
#[test]
fn whiteouts_never_delete_outside() {
    let arena = Arena::new();
    let outer_dir = arena.outer_str("victimdir");
    let layer = || {
        let mut l = Layer::new();
        l.file("../.wh.victim", b"")
            .file("/../.wh.victimdir", b"")
            .symlink("a", "/tmp/x")
            .file("a/.wh.victim", b"")
            .symlink("b", &outer_dir)
            .file("b/.wh.victim", b"")
            .symlink("c", "..")
            .file("c/.wh.victimdir", b"");
        l
    };
    arena.apply(&mut layer()).unwrap();
    arena.check();
    // The opaque marker through a symlink to an outside directory.
    arena
        .apply(
            Layer::new()
                .symlink("o", &outer_dir)
                .file("o/.wh..wh..opq", b""),
        )
        .unwrap();
    arena.check();
    // Overlay: whiteouts become devices inside the upper, or are refused.
    let _ = arena.overlay(&mut layer());
    arena.check();
    let _ = arena.overlay(
        Layer::new()
            .symlink("o2", &outer_dir)
            .file("o2/.wh..wh..opq", b""),
    );
    arena.check();
    assert_eq!(
        xattr(&arena.outer.join("victimdir"), "trusted.overlay.opaque"),
        None
    );
}

/// Case 5: a symlink pointing outside is created as such; later members replace it rather than
/// write through it.
#[test]
fn symlinks_outside_are_kept_but_never_written_through() {
    let arena = Arena::new();
    let victim = arena.outer_str("victim");
    arena
        .apply(
            Layer::new()
                .symlink("etcpasswd", "/etc/passwd")
                .symlink("victim_link", &victim)
                .symlink("dotdot", "../victim"),
        )
        .unwrap();
    arena.check();
    assert_eq!(
        fs::read_link(arena.root.join("etcpasswd")).unwrap(),
        Path::new("/etc/passwd")
    );
    assert_eq!(
        fs::read_link(arena.root.join("victim_link")).unwrap(),
        Path::new(&victim)
    );
    assert_eq!(
        fs::read_link(arena.root.join("dotdot")).unwrap(),
        Path::new("../victim")
    );
    // Now members with the symlinks' names: each replaces its symlink.
    let mut layer = Layer::new();
    layer
        .file("etcpasswd", b"pwned")
        .push(
            Layer::header(tar::EntryType::Fifo, "victim_link", "", 0o600),
            b"",
            |_| {},
        )
        .pax(&[("SCHILY.xattr.trusted.x", b"pwned")])
        .push(
            Layer::header(tar::EntryType::Directory, "dotdot/", "", 0o777),
            b"",
            |h| h.set_uid(4242),
        );
    arena.apply(&mut layer).unwrap();
    arena.check();
    assert_eq!(fs::read(arena.root.join("etcpasswd")).unwrap(), b"pwned");
    assert!(fs::symlink_metadata(arena.root.join("dotdot"))
        .unwrap()
        .is_dir());
    assert_eq!(owner(&arena.outer.join("victim")), (0, 0));
    assert_eq!(xattr(&arena.outer.join("victim"), "trusted.x"), None);
}
