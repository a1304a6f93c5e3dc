"""A real local AWS endpoint (moto server on loopback) and clients pointed at it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import boto3
from moto.server import ThreadedMotoServer

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
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


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
