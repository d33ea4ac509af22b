# Sourced by start.sh and test.sh: installs what the build needs, then sets up the environment
# every cargo run here uses, from the repository's root.
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$repo/scripts/setup.sh"
export PATH="$HOME/.cargo/bin:$PATH"
cd "$repo"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
# Link Debian's librocksdb-dev (also set in .cargo/config.toml, which cargo only reads
# when run from inside the repository) instead of compiling RocksDB from C++ source.
export ROCKSDB_LIB_DIR="${ROCKSDB_LIB_DIR:-/usr/lib/x86_64-linux-gnu}"
