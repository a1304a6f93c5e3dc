#!/bin/sh
# Ship bytecode for the Lambda runtime's Python (3.11) in a `sam build` artifact: /opt and
# /var/task are read-only on Lambda, so without it every cold start compiles each module from
# source. Checked by hash, not by mtime (zip archives round mtimes). Skipped, with a note, when
# the build machine's python3 is not 3.11: its bytecode would never be used.
set -e
if python3 -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    python3 -m compileall -q -f -j 0 --invalidation-mode unchecked-hash "$1" >/dev/null
else
    echo "note: python3 is not 3.11, so $1 ships without bytecode" >&2
fi
