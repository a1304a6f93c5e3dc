"""Every key case runs on both stores: the SQLite file and DynamoDB (moto server)."""

import pytest


@pytest.fixture(params=["sqlite", "dynamodb"])
def kind(request):
    return request.param
