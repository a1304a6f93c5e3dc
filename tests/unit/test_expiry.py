"""Stored items (sessions, quotas, cache) live at least their TTL, whatever the clock's fraction."""

import pytest

from llm_server.stores import expiry


@pytest.mark.parametrize("written_at", [100.0, 100.05, 100.95])
def test_an_item_lives_at_least_its_ttl_and_at_most_one_second_more(written_at):
    expiration = expiry.expires_at(1, written_at)
    assert not expiry.is_expired(expiration, written_at + 0.999)
    assert expiry.is_expired(str(expiration), written_at + 2.0)
