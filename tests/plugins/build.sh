#!/bin/sh
# Builds the test-only plugin libraries into <target-dir>/test-plugins/debug and, built with
# panic=abort, panic-abort into <target-dir>/test-plugins-abort/debug. Silent on success.
set -eu
if [ $# -ne 1 ]; then
    echo "usage: $0 <target-dir>" >&2
    exit 2
fi
target=$1
manifest=$(dirname "$0")/Cargo.toml
cargo=${CARGO:-cargo}
"$cargo" build --quiet --manifest-path "$manifest" --target-dir "$target/test-plugins"
"$cargo" build --quiet --manifest-path "$manifest" -p rcontainerd-test-plugin-panic-abort \
    --target-dir "$target/test-plugins-abort" --config 'profile.dev.panic="abort"'
