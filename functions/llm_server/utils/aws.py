"""The process's AWS clients: one botocore session, one parse of botocore's data.

Every client here (the stores' DynamoDB, Bedrock's runtime, Secrets Manager) comes from one
session, so botocore reads its endpoints, partitions and each service's model once per process.
With boto3's default session for the stores and a session of its own for Bedrock, a cold chat on
Bedrock parsed them twice: its second client took ~70 ms instead of ~2. The clients are plain
botocore: boto3 adds nothing to a low-level client but the import of its resource layer and
s3transfer (~20 ms of a cold start).

A botocore session is not thread-safe, and a free-mode admission asks three counters at once, so
clients are made under a lock. `renew` (after a SnapStart restore) starts a new session, which
resolves credentials afresh, on the data already parsed.
"""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()
_session: Any = None
_loader: Any = None  # botocore's parsed data, kept across renewals


def client(service: str, **options: Any) -> Any:
    """A botocore client of `service` (`options`: `create_client`'s, e.g. `config`)."""
    with _lock:
        return _current().create_client(service, **options)


def session() -> Any:
    """The process's botocore session: its credentials and region (the key CLI signs with it)."""
    with _lock:
        return _current()


def renew() -> None:
    """Make the next clients on a new session: fresh credentials, the same parsed data."""
    global _session
    with _lock:
        _session = None


def _current() -> Any:
    global _session, _loader
    if _session is None:
        import botocore.session

        _session = botocore.session.get_session()
        if _loader is None:
            _loader = _session.get_component("data_loader")
        else:
            _session.register_component("data_loader", _loader)
    return _session
