#!/usr/bin/env bash
# Builds everything and runs every test: unit, plugin-api's conformance suites, integration tests
# (which start the real daemon and run both ctrs). Run as root: tests mount filesystems.
# Extra arguments go to `cargo test` (e.g. a test name filter).
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

# api/build.rs reads containerd's protos from a fetched package; fetch first on a fresh machine.
cargo fetch --locked
cargo fetch --locked --manifest-path tests/plugins/Cargo.toml
cargo fetch --locked --manifest-path plugins/example/Cargo.toml
cargo build --workspace --locked
bash tests/plugins/build.sh "$CARGO_TARGET_DIR"
# The example plugin is a workspace of its own (never next to the daemon); its tests run here and
# the integration tests load it from $CARGO_TARGET_DIR/example.
bash plugins/example/test.sh
# Builds before the example left the workspace put it next to the daemon; a reused target dir
# would still load that copy by default.
rm -f "$CARGO_TARGET_DIR/debug/librcontainerd_plugin_example.so"
# Every test binary runs even when an earlier one fails, so one run shows every failure.
cargo test --workspace --locked --no-fail-fast "$@"
