"""A background response holds its key's quota from the moment it is queued, exactly once."""

import pytest

import openai
from helpers.clock import FakeClock
from helpers.gateway_keys import create_key, keyed_app
from helpers.live_server import LiveServer
from helpers.tenants import CALLER_KEY

LOOSE = {"free_mode_requests_per_minute": 1000, "free_mode_tokens_per_day": 10**9}


async def lost(owner: str, response_id: str, caller_key: str) -> None:
    """A run that has not started yet (its invocation still on its way)."""


def test_a_queued_run_holds_its_keys_tokens_until_a_cancel_gives_them_back(
    kind, moto_endpoint, fake
):
    clock = FakeClock(1_795_608_030.0)  # half a minute in: the tpm window stays put
    # the caller's own OpenAI key: a key's rates count every turn, whoever pays
    app, _ = keyed_app(kind, moto_endpoint, fake, clock=clock, **LOOSE)
    app.state.services.__dict__["start_background"] = lost
    with LiveServer(app) as server:
        key = create_key(server, tpm=300)["key"]
        client = openai.OpenAI(
            base_url=f"{server.url}/v1",
            api_key=CALLER_KEY,
            default_headers={"X-Api-Key": key},
            max_retries=0,
        )
        body = {"model": "gpt-4o-mini", "input": "안녕", "background": True}
        first = client.responses.create(**body, max_output_tokens=200)
        with pytest.raises(openai.RateLimitError) as held:
            client.responses.create(**body, max_output_tokens=200)
        cancelled = client.responses.cancel(first.id)
        again = client.responses.create(**body, max_output_tokens=200)
    assert first.status == "queued" and again.status == "queued"
    assert held.value.code == "key_rate_limited"  # the queued run's 200 tokens are held
    assert cancelled.status == "cancelled"  # and given back, once: the next one fits
    assert fake.seen == []
