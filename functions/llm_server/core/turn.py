"""The values a turn is made of: what to run, for whom, by when, and what came of it.

Adapters (`native_api`, `openai_api`) translate their protocol into a `Turn` and a
`RequestContext`, and an `Outcome` back into their protocol; nothing else crosses between them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from llm_server.core.caller import Caller
from llm_server.core.keys import KeySource
from llm_server.values import ChatMessage, Generation, SamplingOptions

CALLER_KEY = "<caller key>"
"""How the core names the caller's own OpenAI key in an error's `param` and message.

Each adapter names the field its protocol carries the key in (`openai_api_key`, `Authorization`)
when it renders the error (see `web/errors.py`).
"""


@dataclass(frozen=True)
class RequestContext:
    """Who asks, and by when the answer must be out (a `time.monotonic()` value, or None).

    `waits`: a background response's turn, which waits for a free slot until its deadline
    where a caller would be refused at once (429) and retry.
    """

    caller: Caller
    deadline: float | None = None
    request_id: str = ""
    waits: bool = False


@dataclass(frozen=True)
class Turn:
    """One chat turn to run, whichever API it came through.

    `model`, `temperature` and `max_tokens` left None take the DEFAULT_* settings. `earlier`
    reads the messages that come before `messages` (a stored conversation): the runner calls it
    only once the turn holds its concurrency slot, so a refused request loads nothing.
    """

    instructions: str
    messages: tuple[ChatMessage, ...]
    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    caller_key: str = ""
    free_mode: bool = False
    options: SamplingOptions = field(default_factory=SamplingOptions)
    earlier: Callable[[], Awaitable[tuple[ChatMessage, ...]]] | None = None


CacheResult = Literal["HIT", "MISS"]


@dataclass(frozen=True)
class Outcome:
    """A finished turn: the reply, where its key came from, the temperature used, the time.

    `cache` says whether the response cache answered (`HIT`), was asked in vain (`MISS`), or
    does not apply to this turn (None).
    """

    generation: Generation
    key_source: KeySource
    temperature: float
    seconds: float
    cache: CacheResult | None = None
