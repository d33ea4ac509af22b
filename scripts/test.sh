#!/usr/bin/env bash
# Builds everything and runs every test: unit, plugin-api's conformance suites, integration tests
# (which start the real daemon and run both ctrs). Run as root: tests mount filesystems.
# Extra arguments go to `cargo test` (e.g. a test name filter).
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

# api/build.rs reads containerd's protos from a fetched package; fetch first on a fresh machine.
cargo fetch --locked
cargo fetch --locked --manifest-path tests/plugins/Cargo.toml
cargo build --workspace --locked
bash tests/plugins/build.sh "$CARGO_TARGET_DIR"
# Every test binary runs even when an earlier one fails, so one run shows every failure.
cargo test --workspace --locked --no-fail-fast "$@"
