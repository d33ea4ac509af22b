#!/usr/bin/env bash
# Builds rcontainerd and runs it in the foreground with everything under ./.rcontainerd/.
# Extra arguments go to the daemon (e.g. --log-level debug). Stop it with Ctrl-C.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

cargo build --quiet

local_dir="$repo/.rcontainerd"
mkdir -p "$local_dir"
socket="$local_dir/rcontainerd.sock"
cat <<INFO
rcontainerd: root $local_dir/root, state $local_dir/state, plugins from $CARGO_TARGET_DIR/debug
In another shell:
  ctr --address $socket plugins ls                        # Debian's containerd ctr
  $CARGO_TARGET_DIR/debug/ctr --address $socket plugins ls   # ours
INFO
exec "$CARGO_TARGET_DIR/debug/rcontainerd" \
    --root "$local_dir/root" \
    --state "$local_dir/state" \
    --address "$socket" \
    "$@"
