#!/usr/bin/env bash
# Swagger UI's assets for /docs, from npm's swagger-ui-dist at a pinned version and integrity:
# the bundle, its CSS and its licence, copied into the package (web/static/swagger-ui, not in
# git). The tarball is kept in ~/.cache/llm-server/npm, so a later build needs no registry.
#   toolchain/fetch-swagger-ui.sh VERSION INTEGRITY DEST
set -euo pipefail
version=$1 integrity=$2 dest=$3
cache=${XDG_CACHE_HOME:-$HOME/.cache}/llm-server/npm
tarball=$cache/swagger-ui-dist-$version.tgz
mkdir -p "$cache"
if [[ ! -f $tarball ]]; then
  (cd "$cache" && npm pack --silent "swagger-ui-dist@$version" >/dev/null)
fi
actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
if [[ $actual != "$integrity" ]]; then
  echo "swagger-ui-dist $version: integrity $actual, expected $integrity" >&2
  rm -f "$tarball"
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -xzf "$tarball" -C "$work"
rm -rf "$dest"
mkdir -p "$dest"
for file in swagger-ui-bundle.js swagger-ui.css LICENSE NOTICE; do
  cp "$work/package/$file" "$dest/"
done
echo "swagger-ui-dist $version ($integrity), from the npm registry" >"$dest/VERSION"
