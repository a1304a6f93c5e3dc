"""Fault-injecting providers: stand-ins used only to make a provider fail or stall on purpose."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from llm_server.values import Generation, GenerationRequest


class FailingProvider:
    """A provider whose every call raises `error`; it records the requests it got."""

    honours = frozenset({"top_p", "response_format"})

    def __init__(self, error: Exception, name: str = "openai") -> None:
        self.name = name
        self.payer = "key" if name == "openai" else "nobody"
        self.error = error
        self.calls: list[GenerationRequest] = []

    async def generate(self, request: GenerationRequest) -> Generation:
        self.calls.append(request)
        raise self.error

    def status(self) -> dict[str, Any]:
        return {"fake": True}

    def models(self) -> list[str]:
        return []

    def reply_model(self, model: str) -> str:
        return model

    async def count_tokens(self, request: GenerationRequest) -> int | None:
        return None

    async def warm_up(self) -> None:
        pass

    async def aclose(self) -> None:
        pass

    def prime(self) -> None:
        pass

    def renew(self) -> None:
        pass


class StalledProvider:
    """A provider that does not answer until `release` is set (to fill the concurrency cap).

    `release` is a threading.Event because the test thread sets it while the server's loop waits.
    """

    name = "local"
    payer = "nobody"
    honours: frozenset[str] = frozenset()

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = 0

    async def generate(self, request: GenerationRequest) -> Generation:
        self.started += 1
        while not self.release.is_set():
            await asyncio.sleep(0.01)
        return Generation(text="done", model="stalled", input_tokens=1, output_tokens=1)

    def status(self) -> dict[str, Any]:
        return {"fake": True}

    def models(self) -> list[str]:
        return []

    def reply_model(self, model: str) -> str:
        return model

    async def count_tokens(self, request: GenerationRequest) -> int | None:
        return None

    async def warm_up(self) -> None:
        pass

    async def aclose(self) -> None:
        pass

    def prime(self) -> None:
        pass

    def renew(self) -> None:
        pass
