"""What an initialisation ahead of traffic asks of the app on Lambda, and a SnapStart restore.

Provisioned concurrency and SnapStart run init before any request arrives: `prime` then loads
what a first chat would otherwise load on its path (the APIs' routes, the HTTP client of calls
to OpenAI and its TLS context, botocore and the service models of the clients the settings
use). Never the server's key: a snapshot is stored, and the key is read when a request first
needs it.

SnapStart snapshots that environment once per published version and resumes every new one from
the same copy, so `renew` (after a restore) makes fresh or unique what would otherwise be shared
or stale: the random state of Python and of OpenSSL, every client with its pooled connections,
the cached server key and the clock of its age, and the counts behind cold starts (the
`ColdStart` metric, the logs' and system info's `cold_start`).
"""

from __future__ import annotations

import os
import random
from typing import TYPE_CHECKING

from llm_server.stores.dynamodb import prime_clients, renew_clients
from llm_server.utils import aws
from llm_server.utils.lambda_runtime import start_environment

if TYPE_CHECKING:
    from fastapi import FastAPI


def register_snapstart_hooks(app: FastAPI) -> None:
    """Run `prime` before the snapshot and `renew` after each restore, where the runtime can.

    Lambda's Python runtimes (3.12 and later) provide `snapshot_restore_py` and call its hooks
    only for SnapStart; elsewhere it is missing and nothing is registered.
    """
    try:
        from snapshot_restore_py import register_after_restore, register_before_snapshot
    except ImportError:
        return
    register_before_snapshot(prime, app)
    register_after_restore(renew, app)


def prime(app: FastAPI) -> None:
    """Load now what the first chat request would load (see the module's docstring)."""
    app.state.load_routes()
    app.state.services.runner.prime()
    if app.state.settings.store == "dynamodb":
        prime_clients()


def renew(app: FastAPI) -> None:
    """Renew what a restored environment must not share with the others from its snapshot."""
    import ssl  # loaded by `prime` already, with the HTTP stack

    random.seed()  # from os.urandom, which the kernel makes unique per environment
    ssl.RAND_add(os.urandom(32), 32.0)  # OpenSSL makes TLS randoms and keys: fresh entropy
    aws.renew()  # the clients made from here on resolve credentials afresh
    app.state.services.runner.renew()
    renew_clients()
    app.state.idempotency = None  # its persistence layer holds a client; made again on use
    start_environment()
