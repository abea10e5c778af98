#!/usr/bin/env bash
# Builds the Debian package from this tree without touching the checkout:
# the tree's files (git's tracked and untracked-but-not-ignored ones, so an
# uncommitted change is in the package and a build directory is not) are
# copied to a temporary directory, `dpkg-buildpackage -us -uc -b` runs
# there, and the .deb (with its .buildinfo and .changes) is moved to OUT_DIR.
# docs/install.md, "From the Debian package".
#
#   deploy/debian/build-deb.sh [OUT_DIR]      (default: the current directory)
#
# Needs dpkg-dev, debhelper and the Build-Depends of debian/control
# (scripts/install-deps.sh installs them all); not root. Prints the .deb's
# path on its last line.
set -euo pipefail

die() { echo "build-deb.sh: $*" >&2; exit 1; }

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=${1:-.}
[[ -d $out ]] || die "output directory $out does not exist"
out=$(cd "$out" && pwd)
for tool in git dpkg-buildpackage dpkg-checkbuilddeps dh; do
  command -v "$tool" >/dev/null || die "$tool is not installed (scripts/install-deps.sh)"
done
[[ -f $src/debian/control ]] || die "no debian/control in $src"
git -C "$src" rev-parse --git-dir >/dev/null 2>&1 || die "$src is not a git checkout (its file list comes from git)"
(cd "$src" && dpkg-checkbuilddeps) || die "Build-Depends missing (scripts/install-deps.sh)"

work=$(mktemp -d "${TMPDIR:-/tmp}/rendervisor-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
tree="$work/rendervisor"
mkdir "$tree"
(cd "$src" && git ls-files -z --cached --others --exclude-standard |
   xargs -0 -r sh -c 'for f; do [ -e "$f" ] || [ -L "$f" ] && printf "%s\0" "$f"; done' sh |
   tar --null -T - -cf -) | tar -xf - -C "$tree"

version=$(cd "$tree" && dpkg-parsechangelog -S Version)
meson_version=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" "$tree/meson.build" | head -n1)
[[ ${version%-*} == "$meson_version" ]] ||
  die "debian/changelog says $version, meson.build says $meson_version: add a changelog entry"

log="$work/build.log"
(cd "$tree" && dpkg-buildpackage -us -uc -b) >"$log" 2>&1 ||
  { tail -n 60 "$log" >&2; die "dpkg-buildpackage failed (the last lines above)"; }

arch=$(dpkg-architecture -qDEB_HOST_ARCH)
deb="rendervisor_${version}_${arch}.deb"
[[ -f $work/$deb ]] || die "dpkg-buildpackage made no $deb"
for f in "$work"/rendervisor*_"${version}"_*; do
  [[ -f $f ]] && mv -f "$f" "$out/"
done
echo "build-deb.sh: built $deb ($(stat -c %s "$out/$deb") bytes)" >&2
echo "$out/$deb"
