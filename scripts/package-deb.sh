#!/usr/bin/env bash
# Builds rcontainerd's Debian package with Debian's own dpkg-deb (docs/operators.md):
#
#   /usr/bin/rcontainerd                      the daemon
#   /usr/bin/rctr                             our ctr (Debian's containerd package owns /usr/bin/ctr)
#   /usr/lib/rcontainerd/rcontainerd-isolated the helper that serves an isolated driver
#                                             (`isolation = "process"`); not a command for users
#   /usr/lib/rcontainerd/plugins/*.so         the in-tree drivers (every plugins/* crate of the
#                                             root workspace; the example is not one)
#   /etc/rcontainerd/config.toml              conffile: config/config.toml with plugin_dirs set
#   /lib/systemd/system/rcontainerd.service   packaging/deb/rcontainerd.service
#   /usr/share/doc/rcontainerd/               README, operator and config docs, config examples
#
# Usage: scripts/package-deb.sh [--release | --binaries DIR] [--out DIR] [--compression xz|gzip|none]
#   --release        (the default) builds the daemon, ctr and drivers with `cargo build --release`
#   --binaries DIR   packages what a build already put in DIR (a target/<profile> directory)
#   --out DIR        where the .deb goes (default: $CARGO_TARGET_DIR/deb, else target/deb)
#   --compression    dpkg-deb's compressor (default xz; the tests use none, which is faster)
# Prints the path of the .deb on its last line.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
binaries=
out=
compression=xz
while (($#)); do
    case $1 in
    --release) binaries= ;;
    --binaries) binaries=${2:?--binaries needs a directory}; shift ;;
    --out) out=${2:?--out needs a directory}; shift ;;
    --compression) compression=${2:?--compression needs xz, gzip or none}; shift ;;
    *)
        echo "package-deb: unknown argument $1 (see the usage at the top of $0)" >&2
        exit 2
        ;;
    esac
    shift
done

# The in-tree drivers: the plugins/* packages that are members of the root workspace.
plugin_manifests=$(cargo metadata --no-deps --format-version 1 --offline \
    --manifest-path "$repo/Cargo.toml" |
    grep -o '"manifest_path":"[^"]*/plugins/[^/"]*/Cargo.toml"' | cut -d'"' -f4)
plugin_packages=()
for manifest in $plugin_manifests; do
    plugin_packages+=("$(sed -n 's/^name = "\(.*\)"$/\1/p' "$manifest" | head -n1)")
done
if ((${#plugin_packages[@]} == 0)); then
    echo "package-deb: found no plugins/* crates in the workspace" >&2
    exit 1
fi

if [[ -z $binaries ]]; then
    # Packages, the toolchain, RocksDB from Debian; also cds to the repository.
    source "$repo/scripts/env.sh"
    packages=(-p rcontainerd -p rcontainerd-ctr -p rcontainerd-isolation)
    for p in "${plugin_packages[@]}"; do packages+=(-p "$p"); done
    cargo build --release --locked "${packages[@]}" >&2
    binaries=$CARGO_TARGET_DIR/release
fi
out=${out:-${CARGO_TARGET_DIR:-$repo/target}/deb}
mkdir -p "$out"

version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"$/\1/p' "$repo/Cargo.toml")
arch=$(dpkg --print-architecture)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# dpkg-shlibdeps wants the tree at debian/<package> next to a debian/control.
root=$work/debian/rcontainerd
doc=$root/usr/share/doc/rcontainerd

# Programs and libraries, stripped as Debian's policy asks (debug info is most of their size).
install_stripped() {
    install -D -m "$1" "$2" "$3"
    strip --strip-unneeded --remove-section=.comment --remove-section=.note "$3"
}
install_stripped 755 "$binaries/rcontainerd" "$root/usr/bin/rcontainerd"
install_stripped 755 "$binaries/ctr" "$root/usr/bin/rctr"
install_stripped 755 "$binaries/rcontainerd-isolated" "$root/usr/lib/rcontainerd/rcontainerd-isolated"
for p in "${plugin_packages[@]}"; do
    library=lib${p//-/_}.so
    install_stripped 644 "$binaries/$library" "$root/usr/lib/rcontainerd/plugins/$library"
done

# The shipped default config with the package's plugin directories: ours, then the operator's
# own for third-party drivers.
install -d "$root/etc/rcontainerd"
dirs='plugin_dirs = ["/usr/lib/rcontainerd/plugins", "/usr/local/lib/rcontainerd/plugins"]'
sed "s|^plugin_dirs = \[\]$|$dirs|" "$repo/config/config.toml" >"$root/etc/rcontainerd/config.toml"
if ! grep -qxF "$dirs" "$root/etc/rcontainerd/config.toml"; then
    echo "package-deb: config/config.toml has no 'plugin_dirs = []' line to set" >&2
    exit 1
fi
chmod 644 "$root/etc/rcontainerd/config.toml"

install -D -m 644 "$repo/packaging/deb/rcontainerd.service" \
    "$root/lib/systemd/system/rcontainerd.service"

# Docs. operators.md stays uncompressed: the unit's Documentation= names it. The others above
# 4 KiB are compressed, as the policy asks.
install -D -m 644 "$repo/packaging/deb/copyright" "$doc/copyright"
install -m 644 "$repo/README.md" "$repo/docs/operators.md" "$repo/docs/config.md" \
    "$repo/docs/plugin-authors.md" "$repo/docs/abi.md" "$doc/"
install -d "$doc/examples"
install -m 644 "$repo"/config/examples/*.toml "$doc/examples/"
find "$doc" -type f -size +4k ! -name operators.md ! -name copyright -exec gzip -9n {} +
commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
date=$(git -C "$repo" log -1 --format=%aD 2>/dev/null || date -R)
cat >"$doc/changelog" <<EOF
rcontainerd ($version) unstable; urgency=medium

  * Built from commit $commit by scripts/package-deb.sh.

 -- rcontainerd developers <dev@rcontainerd.invalid>  $date
EOF
gzip -9n "$doc/changelog"

# Shared-library dependencies (Debian's RocksDB, libc...) as Debian computes them.
mkdir -p "$root/DEBIAN"
printf 'Source: rcontainerd\n\nPackage: rcontainerd\nArchitecture: any\n' >"$work/debian/control"
elves=("$root/usr/bin/rcontainerd" "$root/usr/bin/rctr" "$root/usr/lib/rcontainerd/rcontainerd-isolated" "$root"/usr/lib/rcontainerd/plugins/*.so)
depends=$(cd "$work" && dpkg-shlibdeps -O "${elves[@]}" 2>"$work/shlibdeps.log" |
    sed -n 's/^shlibs:Depends=//p') || {
    cat "$work/shlibdeps.log" >&2
    exit 1
}
rm "$work/debian/control"

installed_size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<EOF
Package: rcontainerd
Version: $version
Architecture: $arch
Maintainer: rcontainerd developers <dev@rcontainerd.invalid>
Installed-Size: $installed_size
Depends: $depends
Recommends: runc
Suggests: containerd
Section: admin
Priority: optional
Homepage: https://example.invalid/rcontainerd
Description: containerd-compatible container daemon whose drivers are plugins
 rcontainerd serves containerd 1.6's gRPC API on its own socket
 (/run/rcontainerd/rcontainerd.sock), so containerd's clients and ctr work
 with it. Its snapshotters, content store and task runtime are plugin
 libraries it loads at start; a driver that fails is reported by
 "ctr plugins ls" instead of stopping the daemon.
 .
 This package installs the daemon, its systemd service, the in-tree drivers
 and its own ctr as "rctr". Running containers also needs runc and
 containerd-shim-runc-v2 (from the containerd package).
EOF
echo /etc/rcontainerd/config.toml >"$root/DEBIAN/conffiles"
install -m 755 "$repo/packaging/deb/postinst" "$repo/packaging/deb/prerm" \
    "$repo/packaging/deb/postrm" "$root/DEBIAN/"
(cd "$root" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z |
    xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 644 "$root/DEBIAN/md5sums" "$root/DEBIAN/control" "$root/DEBIAN/conffiles"

deb=$out/rcontainerd_${version}_${arch}.deb
dpkg-deb --root-owner-group -Z"$compression" --build "$root" "$deb" >&2
echo "$deb"
