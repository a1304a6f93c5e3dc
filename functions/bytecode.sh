#!/bin/sh
# Ship bytecode for the Lambda runtime's Python (3.13) in a `sam build` artifact: /opt and
# /var/task are read-only on Lambda, so without it every cold start compiles each module from
# source. Checked by hash, not by mtime (zip archives round mtimes). Compiled by LAMBDA_PYTHON
# (the top Makefile sets it to the 3.13 it builds, see toolchain/), else python3.13 from PATH;
# skipped, with a note, when neither is 3.13: other bytecode would never be used.
set -e
python=${LAMBDA_PYTHON:-python3.13}
if "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; then
    "$python" -m compileall -q -f -j 0 --invalidation-mode unchecked-hash "$1" >/dev/null
else
    echo "note: no Python 3.13 (LAMBDA_PYTHON=$python), so $1 ships without bytecode" >&2
fi
