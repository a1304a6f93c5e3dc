"""A real local AWS endpoint (moto server on loopback) and clients pointed at it."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

OFFLINE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "ap-northeast-2",
    "AWS_REGION": "ap-northeast-2",
    "AWS_MAX_ATTEMPTS": "1",
}


@contextmanager
def moto_server() -> Iterator[str]:
    """Start moto's server on 127.0.0.1 at a free port; yield its endpoint URL."""
    for name, value in OFFLINE_AWS_ENV.items():
        os.environ.setdefault(name, value)
    app = OneRequestAtATime(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


class OneRequestAtATime:
    """Lets one request at a time into moto, so each is applied atomically, as AWS applies it.

    moto has no lock: a DynamoDB transaction copies the table, writes, and on a failed condition
    puts the copy back, undoing whatever another request wrote meanwhile (or fails with a 500
    when the table changes during the copy). Two racing session appends could then both get 200
    and one turn vanish: a fault of the stand-in, not of the code under test, which relies on
    DynamoDB's atomic transactions. Connections are still served concurrently.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self._lock:
            return list(self._app(environ, start_response))


def secrets_client(endpoint: str):
    """A Secrets Manager client that talks HTTP to `endpoint`."""
    return boto3.client("secretsmanager", endpoint_url=endpoint, region_name="ap-northeast-2")


class CallCounter:
    """Counts the API calls a boto3 client really sends, by operation name."""

    def __init__(self, client, operation: str) -> None:
        self.count = 0
        service = client.meta.service_model.service_id.hyphenize()
        client.meta.events.register(f"before-send.{service}.{operation}", self._seen)

    def _seen(self, **_: object) -> None:
        self.count += 1
