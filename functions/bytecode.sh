#!/bin/sh
# Ship bytecode for the Lambda runtime's Python (3.13) in a `sam build` artifact: /opt and
# /var/task are read-only on Lambda, so without it every cold start compiles each module from
# source. Checked by hash, not by mtime (zip archives round mtimes). Compiled by LAMBDA_PYTHON
# (the top Makefile sets it to the 3.13 it builds, see toolchain/), else python3.13 from PATH,
# else the 3.13 that toolchain/build-python.sh builds into ~/.cache (once, about 3 minutes), so
# that a plain `sam build` ships the same bytecode as `make sam-check`.
set -e
repo=$(cd "$(dirname "$0")/.." && pwd)
is_313() { "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; }
python=${LAMBDA_PYTHON:-python3.13}
if ! is_313 "$python"; then
    version=${LAMBDA_PYTHON_VERSION:-$(sed -n 's/^LAMBDA_PYTHON_VERSION := //p' "$repo/toolchain/versions.mk")}
    home=${LAMBDA_PYTHON_HOME:-$HOME/.cache/llm-server/python-$version}
    "$repo/toolchain/build-python.sh" "$version" "$home" >&2
    python=$home/bin/python3.13
fi
"$python" -m compileall -q -f -j 0 --invalidation-mode unchecked-hash "$1" >/dev/null
