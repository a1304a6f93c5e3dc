"""Bedrock on the real protocol: ministack's bedrock-runtime, reached by boto3's own client.

One ministack for the suite, forwarding each Converse call to `FakeChat` (scripted answers);
each test gets an app on its own settings, and boto3 pointed at the emulator by the standard
`AWS_ENDPOINT_URL_BEDROCK_RUNTIME` variable, with dummy credentials.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from helpers.aws_emulator import emulator
from helpers.bedrock import bedrock_app
from helpers.fake_chat import FakeChat
from helpers.guardrails import create_guardrail
from helpers.live_server import LiveServer
from helpers.recording_proxy import RecordingProxy
from helpers.server_process import free_port


@pytest.fixture(scope="session")
def bedrock_upstream() -> Iterator[tuple[str, FakeChat]]:
    """(the emulator's endpoint, the chat server it forwards to)."""
    with (
        FakeChat() as chat,
        emulator(free_port(), auth=False, MINISTACK_BEDROCK_PROXY_URL=chat.url) as endpoint,
    ):
        yield endpoint, chat


@pytest.fixture
def chat(bedrock_upstream, monkeypatch) -> FakeChat:
    """The scripted upstream, emptied; boto3 pointed at the emulator for this test."""
    endpoint, fake = bedrock_upstream
    fake.reset()
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return fake


@pytest.fixture
def server(chat) -> Iterator[LiveServer]:
    """The app over HTTP, on the emulator."""
    with LiveServer(bedrock_app()) as live:
        yield live


@pytest.fixture
def proxy(bedrock_upstream, chat, monkeypatch) -> Iterator[RecordingProxy]:
    """The emulator behind a recording proxy, where boto3 sends bedrock-runtime's calls."""
    endpoint, _ = bedrock_upstream
    with RecordingProxy(endpoint) as recording:
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", recording.url)
        yield recording


@pytest.fixture(scope="module")
def guardrail(bedrock_upstream) -> str:
    """The suite's guardrail (`helpers.guardrails.policy`), made on the emulator: `id:version`."""
    return create_guardrail(bedrock_upstream[0])
