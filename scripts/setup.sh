#!/usr/bin/env bash
# Installs what building and testing rcontainerd needs on Debian bookworm. Run as root.
# Idempotent and quiet: prints nothing unless something fails (then the failing step's output).
set -euo pipefail

# Build: clang/libclang for the RocksDB bindings (bindgen), Debian's RocksDB to link against, protoc,
# ISA-L (libisal-dev) whose igzip inflate decompresses gzip layers (host/archive/build.rs).
# Tests: containerd (the reference `ctr` 1.6.20) and runc, btrfs-progs and util-linux (a
# loop-mounted btrfs filesystem for the btrfs tests), a C toolchain; valgrind for the plugin ABI's
# leak check (scripts/leak-check.sh). `images pull` tests: a registry of their own
# (docker-registry, run by the tests, not as a service), skopeo to push test images into it,
# htpasswd (apache2-utils) for its password file, openssl for its HTTPS certificates. The ttrpc
# crate's shim test: containerd's containerd-shim-runc-v2 runs a container whose rootfs is a static
# busybox (busybox-static). The Debian package's test (tests/deb_package.rs): dpkg-deb,
# dpkg-shlibdeps and strip come with build-essential (dpkg-dev, binutils); systemd-analyze
# (systemd) checks the unit.
PACKAGES=(
    build-essential ca-certificates curl git pkg-config
    clang libclang-dev librocksdb-dev protobuf-compiler libisal-dev
    containerd runc btrfs-progs util-linux zlib1g valgrind
    docker-registry skopeo apache2-utils openssl busybox-static
    systemd
)
# Oldest Rust the workspace builds with (Cargo.toml `rust-version`).
MIN_RUST_MINOR=88

log=$(mktemp)
trap 'rm -f "$log"' EXIT

run_quietly() {
    if ! "$@" >"$log" 2>&1; then
        echo "setup: '$*' failed:" >&2
        cat "$log" >&2
        exit 1
    fi
}

if [[ $(id -u) -ne 0 ]]; then
    echo "setup: run as root (installs Debian packages)" >&2
    exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    run_quietly apt-get update
    run_quietly apt-get install -y --no-install-recommends "${missing[@]}"
fi

# Debian's cargo is too old for this workspace: use rustup's stable toolchain.
export PATH="$HOME/.cargo/bin:$PATH"
rust_minor() { rustc --version 2>/dev/null | sed -n 's/^rustc 1\.\([0-9]*\).*/\1/p'; }
if [[ -z $(rust_minor) || $(rust_minor) -lt $MIN_RUST_MINOR ]]; then
    if command -v rustup >/dev/null; then
        run_quietly rustup toolchain install stable --profile minimal --component rustfmt,clippy
        run_quietly rustup default stable
    else
        echo "setup: Rust 1.$MIN_RUST_MINOR or newer is needed (install it with rustup)" >&2
        exit 1
    fi
fi
# CI (.ci/run) checks formatting and lints.
for tool in fmt clippy; do
    if ! cargo "$tool" --version >/dev/null 2>&1; then
        component=$([[ $tool == fmt ]] && echo rustfmt || echo clippy)
        if command -v rustup >/dev/null; then
            run_quietly rustup component add "$component"
        else
            echo "setup: cargo $tool is missing (rustup component add $component)" >&2
            exit 1
        fi
    fi
done
