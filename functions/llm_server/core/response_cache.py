"""The seed's response cache: an in-memory LRU with a TTL, per warm container.

The key is a hash of every input that changes the answer (provider, model, system prompt,
messages with their images and tool calls, temperature, max_tokens, and the sampling options:
format, tools, stop, seed...), of the caller who owns it (`Caller.owner`) and of who pays:
the key source and, for a caller's own key, its fingerprint. So one caller's answer is never
served to another, and nobody learns from a hit what someone else asked. Only successes are
stored. By default only deterministic requests (temperature 0) are cached. With a shared tier
(`CACHE_SHARED`, DynamoDB), warm containers also serve each other's answers.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict
from typing import Protocol

from llm_server.utils.redact import key_fingerprint
from llm_server.values import Generation, GenerationRequest


class SharedCache(Protocol):
    """A cache tier every warm container sees (the DynamoDB table)."""

    def get(self, key: str) -> Generation | None:
        """The stored reply, or None."""
        ...

    def put(self, key: str, generation: Generation) -> None:
        """Store a reply for the TTL."""
        ...


class ResponseCache:
    """LRU of `Generation`s by request hash, each kept `ttl_seconds`."""

    def __init__(
        self,
        max_entries: int,
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        shared: SharedCache | None = None,
    ) -> None:
        self._max_entries = max_entries
        self._ttl = ttl_seconds
        self._clock = clock
        self._shared = shared
        self._entries: OrderedDict[str, tuple[float, Generation]] = OrderedDict()

    async def lookup(self, key: str) -> Generation | None:
        """The entry kept here, else the shared tier's (then kept here too).

        The shared tier is an optimisation: when it cannot answer, this is a miss (logged and
        counted as `CacheErrors`), never a failed request.
        """
        generation = self.get(key)
        if generation is None and self._shared is not None:
            try:
                generation = await asyncio.to_thread(self._shared.get, key)
            except Exception:
                _shared_tier_failed("lookup")
                return None
            if generation is not None:
                self.put(key, generation)
        return generation

    async def store(self, key: str, generation: Generation) -> None:
        """Keep a reply here and, if configured and reachable, in the shared tier."""
        self.put(key, generation)
        if self._shared is not None:
            try:
                await asyncio.to_thread(self._shared.put, key, generation)
            except Exception:
                _shared_tier_failed("store")

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> Generation | None:
        """The cached reply, or None if absent or expired."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        stored_at, generation = entry
        if self._clock() - stored_at > self._ttl:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return generation

    def put(self, key: str, generation: Generation) -> None:
        """Store a reply, evicting the least recently used beyond `max_entries`."""
        self._entries[key] = (self._clock(), generation)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    @staticmethod
    def key_for(provider: str, request: GenerationRequest, owner: str) -> str:
        """The owner's cache key for the request (a SHA-256; it never contains the API key)."""
        payer = request.key_source
        if request.key_source == "user" and request.api_key is not None:
            payer += ":" + key_fingerprint(request.api_key.get_secret_value())
        material = {
            "provider": provider,
            "model": request.model,
            "instructions": request.instructions,
            "messages": [asdict(m) for m in request.messages],
            "options": asdict(request.options),
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "payer": payer,
            "owner": owner,
        }
        encoded = json.dumps(material, ensure_ascii=False, sort_keys=True, default=_digest)
        return hashlib.sha256(encoded.encode()).hexdigest()


def _digest(value: object) -> object:
    """What JSON has no form for, in a cache key: a document's bytes as their hash, a set sorted."""
    if isinstance(value, bytes):
        return hashlib.sha256(value).hexdigest()
    if isinstance(value, frozenset | set):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not part of a cache key")


def _shared_tier_failed(operation: str) -> None:
    from llm_server.utils.log import logger
    from llm_server.utils.metrics import record_cache_error

    logger.warning("shared cache unavailable", extra={"operation": operation}, exc_info=True)
    record_cache_error()
