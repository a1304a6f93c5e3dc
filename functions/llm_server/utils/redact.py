"""Keep key material out of anything we say: messages from upstream can quote the key they got."""

from __future__ import annotations

import hashlib
import re

_KEY_RE = re.compile(r"(sk|rk|pk)-[A-Za-z0-9_\-*.]{4,}")


def redact_keys(text: str) -> str:
    """Replace anything that looks like an API key, or a masked fragment of one, with `sk-***`."""
    return _KEY_RE.sub(r"\1-***", text)


def key_fingerprint(key: str) -> str:
    """A short, stable, one-way name for a key, for pools and caches (never the key itself)."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]
