# Sourced by start.sh, test.sh and leak-check.sh (and .ci/run): installs what the build needs, then sets up the environment
# every cargo run here uses, from the repository's root.
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$repo/scripts/setup.sh"
export PATH="$HOME/.cargo/bin:$PATH"
cd "$repo"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
# Link Debian's librocksdb-dev (also set in .cargo/config.toml, which cargo only reads
# when run from inside the repository) instead of compiling RocksDB from C++ source.
export ROCKSDB_LIB_DIR="${ROCKSDB_LIB_DIR:-/usr/lib/x86_64-linux-gnu}"
# Workspaces besides the root one (and the test plugins' tests/plugins) that .ci/run lints and
# leak-check.sh searches for test binaries: plugins/example is a workspace of its own, as a plugin
# author's would be. Each builds into `workspace_target <dir>` (the example where its test.sh
# builds it, and where the integration tests load it from).
extra_workspaces=(plugins/example)
workspace_target() {
    case $1 in
    plugins/example) echo "$CARGO_TARGET_DIR/example" ;;
    *) echo "$CARGO_TARGET_DIR/workspace-${1//\//-}" ;;
    esac
}
