#!/usr/bin/env bash
# Runs the tests that load plugin libraries and drive them through the ABI under valgrind, and
# fails on a definite leak or a memory error: what crosses the ABI must be freed on the right
# side. Builds the test binaries first if needed (the same build `scripts/test.sh` makes, so after
# it nothing is rebuilt). Run as root: the snapshotter suites mount. CI runs it (.ci/run).
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

if ! command -v valgrind >/dev/null; then
    echo "leak-check: valgrind is missing (scripts/setup.sh installs it)" >&2
    exit 1
fi

# Test file => the tests in it (cargo's test name filter, matched exactly) that cross the ABI.
# Every in-tree plugin's conformance suite through its built library, an ingest resumed through
# a re-initialised library, and the loader's own tests (manifests, refusals, panics caught at the
# boundary, generation-1 plugins served through the compatibility glue), and every runtime call
# across generation 3. Empty: every test.
declare -A SUITES=(
    [plugins/native/tests/conformance.rs]=the_loaded_library_conforms
    [plugins/overlayfs/tests/conformance.rs]=the_loaded_library_conforms
    [plugins/btrfs/tests/conformance.rs]=the_loaded_library_conforms
    [plugins/content-local/tests/conformance.rs]=the_loaded_library_conforms
    [plugins/example/tests/conformance.rs]=the_loaded_library_conforms
    [plugins/content-local/tests/durability.rs]=an_ingest_resumes_through_the_library_after_reinit
    [plugin-api/tests/loading.rs]=
    [plugin-api/tests/runtime_boundary.rs]=
)

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

# The test binaries, located through cargo (built if they are not yet), also a standalone
# plugins/example's (env.sh).
cargo test --workspace --locked --quiet --no-run --message-format=json >"$logs/artifacts.json"
for dir in "${extra_workspaces[@]}"; do
    CARGO_TARGET_DIR=$(workspace_target "$dir") cargo test --workspace --locked --quiet --no-run \
        --message-format=json --manifest-path "$dir/Cargo.toml" >>"$logs/artifacts.json"
done
declare -A BINARIES=()
while IFS= read -r line; do
    src=$(grep -o '"src_path":"[^"]*"' <<<"$line" | cut -d'"' -f4) || continue
    exe=$(grep -o '"executable":"[^"]*"' <<<"$line" | cut -d'"' -f4) || continue
    BINARIES[${src#"$repo/"}]=$exe
done < <(grep '"reason":"compiler-artifact"' "$logs/artifacts.json" | grep '"kind":\["test"\]')

# The loading tests build the test plugins themselves (once per binary); build them here so that
# their time does not count as the suite's.
bash tests/plugins/build.sh "$CARGO_TARGET_DIR"

failed=0
for src in $(printf '%s\n' "${!SUITES[@]}" | sort); do
    exe=${BINARIES[$src]:-}
    if [[ -z $exe ]]; then
        echo "leak-check: no test binary for $src" >&2
        failed=1
        continue
    fi
    filter=()
    if [[ -n ${SUITES[$src]} ]]; then
        filter=(--exact "${SUITES[$src]}")
    fi
    log="$logs/$(echo "$src" | tr / _).log"
    start=$SECONDS
    # definite leaks only: Rust's and glibc's one-time allocations (thread-locals, the test
    # harness's threads, lazily initialised statics) are still reachable at exit, not lost.
    if valgrind --quiet --leak-check=full --show-leak-kinds=definite \
        --errors-for-leak-kinds=definite --error-exitcode=1 \
        --suppressions=scripts/valgrind.supp --log-file="$log" \
        "$exe" "${filter[@]}" --test-threads=1 -q >"$log.out" 2>&1; then
        echo "leak-check: $src ${SUITES[$src]:-(all tests)}: clean ($((SECONDS - start)) s)"
    else
        status=$?
        failed=1
        if [[ $status -eq 1 ]]; then
            echo "leak-check: $src: valgrind found leaks or memory errors:" >&2
        else
            echo "leak-check: $src: the tests failed under valgrind (exit $status):" >&2
        fi
        cat "$log" "$log.out" >&2
    fi
done
exit $failed
