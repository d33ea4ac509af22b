//! The layer applier: whatever tar a layer holds — names with `..`, absolute names, symlinks to
//! outside followed by writes through them, hard links and whiteouts aimed outside, corrupt
//! headers — apply either succeeds or fails, never panics, and never changes anything outside
//! its target (nor the lower directories of an overlay target).
//!
//! Each case runs in a fresh sandbox: `<base>/root` is the target, `<base>/outside` holds files
//! the layer aims at (by relative paths and by its absolute path), `<base>/lower` is the lower
//! directory in overlay mode. Nothing the layer names points above `<base>`, so even a
//! confinement bug could only touch the sandbox, where it is seen.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use arbitrary::{Arbitrary, Unstructured};
use rcontainerd_archive::apply::{apply, Compression, Target};

/// Path components layers are made of: frequent collisions, escapes and whiteouts.
const COMPONENTS: &[&str] = &[
    "a",
    "b",
    "c",
    "..",
    ".",
    "etc",
    "outside",
    "victim",
    "d",
    "f",
    ".wh.a",
    ".wh.b",
    ".wh.victim",
    ".wh..wh..opq",
    ".wh.d",
    "link",
    "up",
    "",
];

#[derive(Debug, Arbitrary)]
struct Name {
    absolute: bool,
    components: Vec<u8>,
}

#[derive(Debug, Arbitrary)]
enum LinkTarget {
    /// A path built like a member name.
    Relative(Name),
    /// The sandbox's `outside` directory (or a file in it), by absolute path.
    Outside(Option<u8>),
    /// `../` repeated.
    Up(u8),
}

#[derive(Debug, Arbitrary)]
enum Body {
    File(Vec<u8>),
    Dir,
    Symlink(LinkTarget),
    Hardlink(LinkTarget),
    Fifo,
    NullDevice,
}

#[derive(Debug, Arbitrary)]
struct Member {
    name: Name,
    body: Body,
    mode: u8,
    owner: u8,
}

#[derive(Debug, Arbitrary)]
struct Layer {
    members: Vec<Member>,
    /// Bytes of the finished tar to overwrite (position, value): corrupt headers and data.
    corrupt: Vec<(u16, u8)>,
    overlay: bool,
    compression: u8,
}

fn render(name: &Name) -> String {
    let parts: Vec<&str> = name
        .components
        .iter()
        .take(6)
        .map(|&c| COMPONENTS[c as usize % COMPONENTS.len()])
        .collect();
    let joined = parts.join("/");
    if name.absolute {
        format!("/{joined}")
    } else {
        joined
    }
}

fn target_text(target: &LinkTarget, outside: &Path) -> String {
    match target {
        LinkTarget::Relative(name) => render(name),
        LinkTarget::Outside(None) => outside.display().to_string(),
        LinkTarget::Outside(Some(i)) => outside
            .join(COMPONENTS[*i as usize % COMPONENTS.len()])
            .display()
            .to_string(),
        LinkTarget::Up(n) => "../".repeat(*n as usize % 8),
    }
}

const MODES: &[u32] = &[0o644, 0o755, 0o4755, 0o1777, 0o000, 0o600];

/// The layer as tar bytes, names written as they are (the tar crate's setters refuse `..`).
fn tar_bytes(layer: &Layer, outside: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for member in layer.members.iter().take(24) {
        let name = render(&member.name);
        let mut header = tar::Header::new_gnu();
        let mode = MODES[member.mode as usize % MODES.len()];
        header.set_mode(mode);
        header.set_uid(u64::from(member.owner % 3) * 1000);
        header.set_gid(u64::from(member.owner % 2) * 1000);
        header.set_mtime(1_700_000_000);
        let mut data: &[u8] = &[];
        match &member.body {
            Body::File(bytes) => {
                header.set_entry_type(tar::EntryType::Regular);
                data = &bytes[..bytes.len().min(600)];
            }
            Body::Dir => header.set_entry_type(tar::EntryType::Directory),
            Body::Symlink(t) | Body::Hardlink(t) => {
                let kind = if matches!(member.body, Body::Symlink(_)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                };
                header.set_entry_type(kind);
                let text = target_text(t, outside);
                let bytes = text.as_bytes();
                let field = &mut header.as_old_mut().linkname;
                let n = bytes.len().min(field.len());
                field[..n].copy_from_slice(&bytes[..n]);
            }
            Body::Fifo => header.set_entry_type(tar::EntryType::Fifo),
            Body::NullDevice => {
                header.set_entry_type(tar::EntryType::Char);
                let _ = header.set_device_major(1);
                let _ = header.set_device_minor(3);
            }
        }
        let bytes = name.as_bytes();
        let field = &mut header.as_old_mut().name;
        let n = bytes.len().min(field.len());
        field[..n].copy_from_slice(&bytes[..n]);
        header.set_size(data.len() as u64);
        header.set_cksum();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    for &(at, value) in layer.corrupt.iter().take(4) {
        let at = at as usize % out.len();
        out[at] = value;
    }
    out
}

/// Everything below `dir`: path → (type and mode, owner, size, content or link target).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut seen = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let detail = if meta.file_type().is_symlink() {
            format!("link {:?}", std::fs::read_link(&path).ok())
        } else if meta.is_file() {
            format!("file {:?}", std::fs::read(&path).ok())
        } else {
            String::new()
        };
        seen.insert(
            path.strip_prefix(dir).unwrap_or(&path).to_path_buf(),
            format!(
                "{:o} {}:{} {} {detail}",
                meta.mode(),
                meta.uid(),
                meta.gid(),
                meta.nlink()
            ),
        );
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        }
    }
    seen
}

fn sandbox() -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    let base = tempfile::tempdir().expect("sandbox");
    let root = base.path().join("root");
    let outside = base.path().join("outside");
    let lower = base.path().join("lower");
    for dir in [
        &root,
        &outside,
        &lower,
        &outside.join("d"),
        &lower.join("a"),
    ] {
        std::fs::create_dir_all(dir).expect("sandbox directory");
    }
    std::fs::write(outside.join("victim"), b"keep").expect("sandbox file");
    std::fs::write(outside.join("d/f"), b"keep").expect("sandbox file");
    std::fs::write(lower.join("a/b"), b"lower").expect("sandbox file");
    std::fs::write(lower.join("victim"), b"lower").expect("sandbox file");
    (base, root, outside, lower)
}

/// One case: apply the layer the bytes describe, then check nothing outside the target moved.
pub fn case(bytes: &[u8]) {
    let mut u = Unstructured::new(bytes);
    let Ok(layer) = Layer::arbitrary(&mut u) else {
        return;
    };
    let (base, root, outside, lower) = sandbox();
    let tar = tar_bytes(&layer, &outside);
    let before_outside = snapshot(&outside);
    let before_lower = snapshot(&lower);
    let (compression, stream) = match layer.compression % 2 {
        0 => (Compression::None, tar),
        _ => (Compression::Gzip, gzip(&tar)),
    };
    let target = if layer.overlay {
        Target::Overlay {
            upper: &root,
            lowers: vec![lower.clone()],
        }
    } else {
        Target::Plain(&root)
    };
    let _ = apply(Cursor::new(stream), compression, target);

    assert_eq!(
        snapshot(&outside),
        before_outside,
        "outside changed: {layer:?}"
    );
    assert_eq!(snapshot(&lower), before_lower, "lower changed: {layer:?}");
    let mut names: Vec<String> = std::fs::read_dir(base.path())
        .expect("sandbox")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["lower", "outside", "root"], "{layer:?}");
    // Directories made with mode 000 must not stop the sandbox's removal.
    make_removable(&root);
    drop(base);
}

fn gzip(data: &[u8]) -> Vec<u8> {
    // A stored (uncompressed) gzip stream is enough to drive the gzip path: header, blocks,
    // trailer with CRC32 and size. Written by hand to keep the crate's dependencies small.
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    let mut chunks = data.chunks(65_535).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(chunk) = chunks.next() {
        let last = chunks.peek().is_none();
        out.push(u8::from(last));
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn make_removable(dir: &Path) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755));
            if let Ok(entries) = std::fs::read_dir(&path) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        }
    }
}
