//! The `openssl` command, which makes the test certificates and keys (Debian package openssl).

use std::path::Path;
use std::process::Command;

pub const OPENSSL: &str = "/usr/bin/openssl";

/// Runs `openssl <args>` in `dir`; panics with its output when it fails.
pub fn run(dir: &Path, args: &[&str]) {
    let out = Command::new(OPENSSL)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("running {OPENSSL}: {e}"));
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
}
