"""The JavaScript clients (tests/clients: the Vercel AI SDK), run by Node.js as users run them.

`make test` installs them (`npm ci`) into ~/.cache, keyed by tests/clients/package-lock.json,
and links tests/clients/node_modules there.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

CLIENTS = Path(__file__).resolve().parents[1] / "clients"


def run_node(script: str, options: dict[str, Any], timeout: float = 120) -> dict[str, Any]:
    """Run `tests/clients/<script>` with `options` (JSON); its one JSON line, parsed."""
    if not (CLIENTS / "node_modules").is_dir() or not shutil.which("node"):
        pytest.fail("the JavaScript clients are not installed: `make test` installs them")
    done = subprocess.run(
        ["node", str(CLIENTS / script), json.dumps(options)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    parsed: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return parsed
