#!/usr/bin/env bash
# Builds and tests the example plugin, a workspace of its own, into $CARGO_TARGET_DIR/example
# (never next to the daemon binary). Extra arguments go to `cargo test`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
target="${CARGO_TARGET_DIR:-$PWD/target}/example"
manifest=plugins/example/Cargo.toml
cargo build --manifest-path "$manifest" --locked --target-dir "$target"
cargo test --manifest-path "$manifest" --locked --target-dir "$target" "$@"
