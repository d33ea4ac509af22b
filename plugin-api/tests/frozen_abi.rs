//! Guards the frozen ABI generations: renders every type layout reachable from each released
//! generation's root module, as `abi_stable` reports it (`StableAbi::LAYOUT` and its `Display`),
//! and compares it with the checked-in golden file `tests/golden/abi-vN.layout`. A difference
//! means a frozen type changed shape, and the daemon would refuse every plugin built before the
//! change.
//!
//! `RCONTAINERD_BLESS_ABI=1` rewrites the golden files instead. That is for a new generation
//! only; a released generation's golden file is never re-blessed (see `docs/abi.md`).

use std::{collections::HashSet, fs, path::PathBuf};

use abi_stable::{library::RootModule, type_layout::TypeLayout, StableAbi};
use rcontainerd_plugin_api::abi::{v1, v2, v3};

/// `M`'s name and version strings (checked when a library loads) and the layout of every type
/// it reaches.
fn render<M: RootModule>() -> String {
    let mut out = format!(
        "root module: {} (base name {}, version {})\n",
        M::NAME,
        M::BASE_NAME,
        M::VERSION_STRINGS
    );
    // Depth first, nested layouts in the order abi_stable lists them: a fixed order.
    let mut seen = HashSet::new();
    let mut pending: Vec<&'static TypeLayout> = vec![<M as StableAbi>::LAYOUT];
    while let Some(layout) = pending.pop() {
        if !seen.insert(layout.get_utypeid()) {
            continue;
        }
        out.push_str(&normalise(&layout.to_string()));
        let mut nested: Vec<&'static TypeLayout> = layout
            .shared_vars()
            .type_layouts()
            .iter()
            .map(|get| get())
            .collect();
        if let Some(checks) = layout.extra_checks() {
            nested.extend(checks.nested_type_layouts().iter().copied());
        }
        pending.extend(nested.into_iter().rev());
    }
    out
}

/// Drops the source line each type is declared on (abi_stable does not compare it, and a comment
/// added above a frozen type must not fail the guard) and shortens package versions to the part
/// abi_stable compares (`0.y` for 0.y.z, `x` otherwise), so that a compatible update of
/// abi_stable does not either.
fn normalise(display: &str) -> String {
    let mut out = String::new();
    for line in display.lines() {
        let line = match line.strip_prefix("line:") {
            Some(rest) => rest.split_once(' ').map_or("", |(_, after)| after),
            None => line,
        };
        out.push_str(&compared_version(line.trim_end()));
        out.push('\n');
    }
    out
}

fn compared_version(line: &str) -> String {
    const KEY: &str = "version:'";
    let Some(at) = line.find(KEY) else {
        return line.to_string();
    };
    let (head, tail) = line.split_at(at + KEY.len());
    let Some((version, rest)) = tail.split_once('\'') else {
        return line.to_string();
    };
    let mut parts = version.split('.');
    let compared = match (parts.next(), parts.next()) {
        (Some("0"), Some(minor)) => format!("0.{minor}"),
        (Some(major), _) => major.to_string(),
        _ => version.to_string(),
    };
    format!("{head}{compared}'{rest}")
}

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.layout"))
}

fn check(name: &str, rendered: String) {
    let path = golden(name);
    if std::env::var_os("RCONTAINERD_BLESS_ABI").is_some_and(|v| v == "1") {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, &rendered).unwrap();
        eprintln!("blessed {}", path.display());
        return;
    }
    let expected = fs::read_to_string(&path).unwrap_or_else(|err| {
        panic!(
            "{}: {err}; a new generation's golden file is written with RCONTAINERD_BLESS_ABI=1",
            path.display()
        )
    });
    if expected == rendered {
        return;
    }
    let actual = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.layout"));
    fs::write(&actual, &rendered).unwrap();
    let first = expected
        .lines()
        .zip(rendered.lines())
        .position(|(e, r)| e != r)
        .unwrap_or_else(|| expected.lines().count().min(rendered.lines().count()));
    panic!(
        "the layout of frozen ABI {name} changed (first difference at line {}: expected {:?}, \
         got {:?}).\nPlugins built against it would be refused: put the change in a new \
         generation (docs/abi.md).\nCompare: diff {} {}",
        first + 1,
        expected.lines().nth(first).unwrap_or("<end>"),
        rendered.lines().nth(first).unwrap_or("<end>"),
        path.display(),
        actual.display()
    );
}

#[test]
fn generation_1_layout_is_frozen() {
    check("abi-v1", render::<v1::ffi::module::PluginModuleV1Ref>());
}

#[test]
fn generation_2_layout_is_frozen() {
    check("abi-v2", render::<v2::ffi::module::PluginModuleV2Ref>());
}

#[test]
fn generation_3_layout_is_frozen() {
    check("abi-v3", render::<v3::ffi::module::PluginModuleV3Ref>());
}

#[test]
fn rendering_is_deterministic_and_complete() {
    let v1 = render::<v1::ffi::module::PluginModuleV1Ref>();
    assert_eq!(v1, render::<v1::ffi::module::PluginModuleV1Ref>());
    // Reaches through init's result into every driver object.
    for name in [
        "FfiSnapshotter",
        "FfiContentStore",
        "FfiContentWriter",
        "FfiContentReader",
        "FfiRuntime",
        "FfiManifest",
    ] {
        assert!(v1.contains(name), "{name} is not in the rendered layout");
    }
    // Generation 2's writer has the method generation 1's lacks (both have the blob's digest).
    let v2 = render::<v2::ffi::module::PluginModuleV2Ref>();
    let digests = |text: &str| text.matches("field_name:digest\n").count();
    assert_eq!(digests(&v2), digests(&v1) + 1);
    // Generation 3 keeps generation 2's writer and carries the runtime object: the placeholder's
    // six methods are gone, the runtime interface's are there, down to its last prefix method.
    let v3 = render::<v3::ffi::module::PluginModuleV3Ref>();
    assert_eq!(digests(&v3), digests(&v2));
    for name in [
        "package:'rcontainerd-plugin-abi-v3'",
        "FfiProcessRef",
        "FfiRuntimeEvent",
        "field_name:next_events\n",
        "field_name:resize_pty\n",
    ] {
        assert!(v3.contains(name), "{name} is not in generation 3's layout");
        assert!(!v2.contains(name), "{name} is in generation 2's layout");
    }
}
