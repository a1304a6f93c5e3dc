"""Stored state (sessions, responses, conversations) on both stores: the SQLite file and DynamoDB
(moto's server), behind the app on the server key in front of the Responses API stand-in."""

from __future__ import annotations

import pytest

from helpers.live_server import LiveServer
from helpers.tenants import tenant_app


@pytest.fixture(params=["sqlite", "dynamodb"])
def kind(request):
    return request.param


@pytest.fixture
def server(kind, moto_endpoint, fake):
    """The app on `kind`'s stores over `fake`; tenants are told apart by `X-Api-Key`."""
    app, _ = tenant_app(kind, moto_endpoint, fake)
    with LiveServer(app) as live:
        yield live
