#!/usr/bin/env bash
# Build CPython VERSION into PREFIX, once: the Lambda runtime's Python (template.yaml: Runtime) for
# machines that have only another one. The source is Debian's (trixie) upstream tarball, fetched
# with apt's signed indexes into a private apt state, so the machine's own apt setup is untouched.
# An interrupted build leaves no PREFIX/.complete and is redone from scratch by the next run.
set -euo pipefail
version=$1 prefix=$2
[ -f "$prefix/.complete" ] && exit 0
minor=${version%.*}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
    >"$work/sources.list"
apt=(apt-get -qq -o "Dir::Etc::sourcelist=$work/sources.list" -o Dir::Etc::sourceparts=-
     -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o APT::Sandbox::User=root)
echo ">> fetching the python$minor source package (Debian trixie)"
"${apt[@]}" update
(cd "$work" && "${apt[@]}" source --download-only "python$minor")
tarball="$work/python${minor}_${version}.orig.tar.xz"
if [ ! -f "$tarball" ]; then
    echo "error: Debian trixie no longer has Python $version:" "$work"/*.orig.tar.xz >&2
    echo "       set PYTHON_LAMBDA_VERSION in the Makefile to the version it has" >&2
    exit 1
fi
echo ">> building Python $version into $prefix (first time only: about 3 minutes on 2 cores)"
tar -xf "$tarball" -C "$work"
rm -rf "$prefix"
cd "$work/Python-$version"
./configure -q --prefix="$prefix" >/dev/null
make -s -j"$(nproc)" >/dev/null 2>"$work/make.log" || { tail -40 "$work/make.log" >&2; exit 1; }
make -s install >/dev/null 2>>"$work/make.log" || { tail -40 "$work/make.log" >&2; exit 1; }
"$prefix/bin/python$minor" -c 'import ssl, sqlite3, ctypes, lzma, zlib, bz2, uuid'
touch "$prefix/.complete"
