//! The fuzz targets' bounded passes: a few seconds each by default (CI), longer with
//! `RCONTAINERD_FUZZ_SECONDS` (docs/testing.md).

use std::time::Duration;

#[test]
fn filter_parser() {
    let cases = rcontainerd_fuzz::run_for(
        rcontainerd_fuzz::budget(Duration::from_secs(5)),
        |_, bytes| rcontainerd_fuzz::filters::case(bytes),
    );
    eprintln!("filter parser: {cases} cases");
    assert!(cases > 0);
}

#[test]
fn layer_applier() {
    if !nix_is_root() {
        rcontainerd_pkg::prereq::missing("root (layers set owners and make device nodes)");
        return;
    }
    let cases = rcontainerd_fuzz::run_for(
        rcontainerd_fuzz::budget(Duration::from_secs(10)),
        |_, bytes| rcontainerd_fuzz::apply::case(bytes),
    );
    eprintln!("layer applier: {cases} cases");
    assert!(cases > 0);
}

fn nix_is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}
