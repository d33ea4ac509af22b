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
# Workspaces besides the root one (and the test plugins' tests/plugins) whose tests test.sh runs
# and .ci/run checks: plugins/example once its Cargo.toml declares its own [workspace], as a
# plugin author's would. Each builds into workspace_target <dir>.
extra_workspaces=()
if grep -q '^\[workspace\]' "$repo/plugins/example/Cargo.toml"; then
    extra_workspaces+=(plugins/example)
fi
workspace_target() { echo "$CARGO_TARGET_DIR/workspace-${1//\//-}"; }
