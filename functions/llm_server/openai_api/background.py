"""Background responses (`background: true`): queued at once, run on their own, polled, cancelled.

Queueing (`queue`) checks the request as a turn, reserves its quotas and budget (so a queued
run cannot spend what its owner no longer has), keeps its job in the background store and
answers `queued`. The run (`run`) is the same streamed turn as any response's, on the same
runner and every provider: the server's own task locally, a second Lambda function invoked
asynchronously on AWS (`BACKGROUND_FUNCTION`, `background_handler.py`). It moves the run
`queued → in_progress → completed | incomplete | failed | cancelled`, keeps a streamed run's
events for readers who resume (`events`), and looks for a cancel between events; a finished
response is stored as any stored response. A run still unfinished after its deadline is
`failed` when next read: its worker died (a killed invocation), it never stays `in_progress`.

The caller's own OpenAI key is never stored: it reaches the run in memory, or in the
asynchronous invocation's payload on AWS.
"""

from __future__ import annotations

import asyncio
import json
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any

from llm_server.core.caller import ANONYMOUS, Caller
from llm_server.core.limits import Reservation
from llm_server.core.turn import RequestContext, Turn
from llm_server.exceptions import (
    AuthenticationException,
    BadRequestException,
    NotFoundException,
    RateLimitException,
    StoreUnavailableException,
)
from llm_server.openai_api import responses, streams, translate
from llm_server.openai_api.protocol import ResponsesRequest
from llm_server.openai_api.response_objects import ResponseError, ResponseObject
from llm_server.stores.background import CHUNK_FRAMES
from llm_server.stores.faults import retried
from llm_server.utils.log import logger
from llm_server.values import Generation

if TYPE_CHECKING:
    from llm_server.config.settings import Settings
    from llm_server.core.runner import TurnRunner
    from llm_server.openai_api.conversations import ConversationArchive
    from llm_server.openai_api.stored import ResponseArchive
    from llm_server.stores.background import BackgroundRun, BackgroundStore

FLUSH_SECONDS = 0.25  # a streamed run's events reach readers (and a cancel is seen) this often
POLL_SECONDS = 0.2  # how often a reader looks for new events, while there are some
MAX_POLL_SECONDS = 2.0  # ... and at most this seldom while there are none
LATE_SECONDS = 30  # past its deadline, an unfinished run's worker is taken for dead
_STORED = ("completed", "incomplete")  # a run that ends so is read as a stored response

TurnOf = Callable[[ResponsesRequest, str], Turn]
"""Makes a request's turn, given the caller's OpenAI key (`routes.response_turn`)."""
Start = Callable[[str, str, str], Awaitable[None]]
"""Starts a queued run: owner, response id, the caller's OpenAI key."""


@dataclass(frozen=True)
class BackgroundJob:
    """What a run needs, as the store keeps it: the request, its caller, what it reserved."""

    body: dict[str, Any]
    created_at: int
    temperature: float
    caller: dict[str, Any]
    reserved: list[list[Any]]

    def encode(self) -> bytes:
        """Compressed JSON."""
        return zlib.compress(json.dumps(asdict(self), ensure_ascii=False).encode(), 6)

    @classmethod
    def decode(cls, data: bytes) -> BackgroundJob:
        """The job `encode` kept."""
        return cls(**json.loads(zlib.decompress(data)))

    @property
    def request(self) -> ResponsesRequest:
        """The request, its references resolved when it was queued."""
        return ResponsesRequest.model_validate(self.body)

    def context(self, remaining: float) -> RequestContext:
        """The run's context: the caller as queued, `remaining` seconds to its deadline."""
        from llm_server.keys.records import KeyPolicy

        fields = dict(self.caller)
        policy = fields.pop("policy")
        caller = Caller(**fields, policy=KeyPolicy.from_json(policy) if policy else None)
        return RequestContext(caller, time.monotonic() + remaining, waits=True)


class Cancelled(Exception):
    """The run was cancelled (`POST /v1/responses/{id}/cancel`) while it ran."""


class BackgroundResponses:
    """Queues, runs, reads and cancels an owner's background responses."""

    def __init__(
        self,
        store: BackgroundStore | None,
        settings: Settings,
        runner: TurnRunner,
        archive: ResponseArchive,
        conversations: ConversationArchive,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock  # epoch seconds: a run's deadline outlives the process
        self._store = store
        self._settings = settings
        self._runner = runner
        self._archive = archive
        self._conversations = conversations
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}  # the runs of this process

    async def queue(
        self,
        job: responses.Job,
        context: RequestContext,
        caller_key: str,
        turn_of: TurnOf,
        start: Start | None = None,
    ) -> ResponseObject:
        """Check, reserve and keep a background request; start it; its `queued` response.

        `start` None: a task of this server (locally); else how to start it elsewhere.
        """
        store, body, owner = self._require(), job.body, job.owner
        if not body.store:
            raise BadRequestException(
                "background responses are stored: background needs store: true",
                param="background",
            )
        if owner == ANONYMOUS:
            raise AuthenticationException(
                "Background responses need a client credential: anonymous callers share one "
                "owner, whose runs any of them could read or cancel",
                code="client_credential_required",
            )
        if await self._unfinished(owner) >= self._settings.background_max_per_owner:
            raise _too_many(self._settings.background_max_per_owner)
        turn = job.turn
        if turn.earlier is not None:  # reserved for the whole input, read again when it runs
            turn = replace(turn, messages=await turn.earlier() + turn.messages, earlier=None)
        reserved = await self._runner.reserve(turn, context)
        temperature = self._temperature(body)
        record = BackgroundJob(
            body.model_dump(mode="json", exclude_unset=True),
            int(self._clock()),
            temperature,
            _caller_json(context.caller),
            reserved.to_json(),
        )
        deadline = self._clock() + self._settings.background_timeout_seconds
        try:
            await self._call(store.create, owner, job.response_id, record.encode(), deadline)
            if await self._unfinished(owner) > self._settings.background_max_per_owner:
                raise _too_many(self._settings.background_max_per_owner)  # a burst raced us
            if start is None:
                self._start_here(owner, job.response_id, caller_key, turn_of)
            else:
                await start(owner, job.response_id, caller_key)
        except Exception:
            await self._runner.give_back(reserved)
            failed = partial(store.move, only_from=("queued",))
            await self._call(failed, owner, job.response_id, "failed", _server_error())
            raise
        return self._object(job.response_id, record, "queued")

    def _start_here(self, owner: str, response_id: str, caller_key: str, turn_of: TurnOf) -> None:
        """Run in a task of this server, kept so that a cancel stops it at once."""
        task = asyncio.create_task(self.run(owner, response_id, caller_key, turn_of))
        self._tasks[owner, response_id] = task
        task.add_done_callback(lambda _: self._tasks.pop((owner, response_id), None))

    async def run(self, owner: str, response_id: str, caller_key: str, turn_of: TurnOf) -> None:
        """Run a queued response to its end, keeping its state (and a stream's events).

        The run owns its reservation once it has moved itself `in_progress` (a run cancelled
        while queued gave it back then); it hands it to the runner, which settles it, or gives
        it back itself if it stops before.
        """
        store = self._require()
        data = await self._call(store.job, owner, response_id)
        run = await self._call(store.get, owner, response_id)
        if data is None or run is None:
            return
        started = partial(store.move, only_from=("queued",))
        if not await self._call(started, owner, response_id, "in_progress", None):
            return  # cancelled (its reservation given back) or failed before it started
        record = BackgroundJob.decode(data)
        reserved = Reservation.from_json(record.reserved)
        handed = False

        async def runner_stream(job: responses.Job, context: RequestContext) -> streams.Stream:
            nonlocal handed
            handed = True  # from its first step, the runner settles the reservation
            async for item in self._runner.stream(job.turn, context, reserved):
                yield item

        watch = asyncio.create_task(self._watch(owner, response_id, asyncio.current_task()))
        try:
            await self._run(owner, response_id, caller_key, turn_of, record, run, runner_stream)
        except (Cancelled, asyncio.CancelledError):
            await self._move(owner, response_id, "cancelled")
        except Exception:
            logger.exception("background response failed")
            await self._move(owner, response_id, "failed", _server_error())
        finally:
            watch.cancel()
            if not handed:
                await self._runner.give_back(reserved)
            logger.info("background response ended", extra={"response_id": response_id})

    async def _run(
        self,
        owner: str,
        response_id: str,
        caller_key: str,
        turn_of: TurnOf,
        record: BackgroundJob,
        run: BackgroundRun,
        runner_stream: Callable[[responses.Job, RequestContext], streams.Stream],
    ) -> None:
        """The run's turn, its events kept; the response stored before the run says it ended."""
        body, context = record.request, record.context(run.deadline - self._clock())
        context = RequestContext(context.caller, context.deadline, response_id, waits=True)
        sink = _EventSink(self._require(), owner, response_id, body.stream)
        job = responses.new_job(body, turn_of(body, caller_key), context, response_id)
        job = responses.with_history(job, self._archive, self._conversations)

        async def keep(made: ResponseObject, generation: Generation) -> None:
            await responses.finish(job, made, generation, self._archive, self._conversations)
            if not await self._move(owner, response_id, made.status):
                raise Cancelled  # cancelled meanwhile: the run says so, whatever was stored

        stream = runner_stream(job, context)
        events = streams.response_events(stream, response_id, body, record.temperature, keep)
        try:
            async for frame in events:
                await sink.add(frame)
                if sink.error is not None:
                    await self._move(owner, response_id, "failed", sink.error)
        finally:
            await events.aclose()
            await sink.flush()

    async def _watch(self, owner: str, response_id: str, task: asyncio.Task[Any] | None) -> None:
        """Cancel the run's task once its cancel flag is set (a silent provider included)."""
        store = self._require()
        while task is not None:
            await asyncio.sleep(FLUSH_SECONDS)
            run = await asyncio.to_thread(store.get, owner, response_id)
            if run is None or run.cancel:
                task.cancel()
                return

    async def _unfinished(self, owner: str) -> int:
        """The owner's runs that count against BACKGROUND_MAX_PER_OWNER (live ones)."""
        alive_after = self._clock() - LATE_SECONDS
        count: int = await self._call(self._require().unfinished, owner, alive_after)
        return count

    async def retrieve(self, owner: str, response_id: str) -> dict[str, Any]:
        """A response as it is now: a run's state, or the stored response once it completed.

        The run is asked first: a run cancelled as it completed says `cancelled`, whatever was
        stored; a response that is no run is a stored one (or 404).
        """
        if self._store is None or not await self._is_run(owner, response_id):
            return (await self._archive.get(owner, response_id)).response
        run, record = await self._found(owner, response_id)
        if run.status in _STORED:
            return (await self._archive.get(owner, response_id)).response
        return self._object(response_id, record, run.status, run.error).model_dump(mode="json")

    async def _is_run(self, owner: str, response_id: str) -> bool:
        return await self._call(self._require().get, owner, response_id) is not None

    async def cancel(self, owner: str, response_id: str) -> dict[str, Any]:
        """Stop a run (the provider's call, the worker's slot); what it generated is charged.

        A run that had finished is answered as it is.
        """
        store = self._require()
        _, record = await self._found(owner, response_id)
        if not await self._call(store.cancel, owner, response_id):
            return await self.retrieve(owner, response_id)  # it had finished
        queued = partial(store.move, only_from=("queued",))
        if await self._call(queued, owner, response_id, "cancelled", None):
            await self._runner.give_back(Reservation.from_json(record.reserved))  # never ran
        task = self._tasks.get((owner, response_id))
        if task is not None:
            task.cancel()
            await asyncio.wait([task], timeout=5)
        else:  # its worker elsewhere stops within FLUSH_SECONDS of the flag
            await self._move(owner, response_id, "cancelled")
        return await self.retrieve(owner, response_id)

    async def events(self, owner: str, response_id: str, after: int) -> AsyncIterator[str]:
        """A streamed run's events after `after`, as they come, until it has finished."""
        store = self._require()
        _, record = await self._found(owner, response_id)
        if not record.request.stream:
            raise BadRequestException(
                "Only a response created with background and stream: true can be streamed",
                param="stream",
            )

        slot = self._runner.slot(owner)  # a reader holds one of its owner's slots, or is a 429
        await slot.__aenter__()

        async def frames() -> AsyncIterator[str]:
            seen, pause = after, POLL_SECONDS
            try:
                while True:
                    run = await self._current(owner, response_id)
                    found = await self._call(store.events, owner, response_id, seen)
                    for frame in found:
                        yield frame
                    seen += len(found)
                    if run.finished and not found:
                        return
                    pause = POLL_SECONDS if found else min(2 * pause, MAX_POLL_SECONDS)
                    if not found:
                        await asyncio.sleep(pause)
            finally:
                await slot.__aexit__(None, None, None)

        return frames()

    async def _found(self, owner: str, response_id: str) -> tuple[BackgroundRun, BackgroundJob]:
        """The owner's run and its job, or 404 as for any unknown response."""
        store = self._require()
        run = await self._current(owner, response_id)
        data = await self._call(store.job, owner, response_id)
        if data is None:
            raise _missing(response_id)
        return run, BackgroundJob.decode(data)

    async def _current(self, owner: str, response_id: str) -> BackgroundRun:
        """The run's state; one past its deadline unfinished is failed now (its worker died)."""
        store = self._require()
        run = await self._call(store.get, owner, response_id)
        if run is None:
            await self._archive.get(owner, response_id)  # 404 unless it is a stored response
            raise BadRequestException(
                f"{response_id[:128]!r} was not created with background: true",
                param="response_id",
            )
        if not run.finished and self._clock() > run.deadline + LATE_SECONDS:
            error = {"code": "server_error", "message": "The background run stopped unfinished"}
            await self._move(owner, response_id, "failed", error)
            run = await self._call(store.get, owner, response_id) or run
        return run

    async def _move(
        self, owner: str, response_id: str, status: str, error: dict[str, str] | None = None
    ) -> bool:
        import anyio

        with anyio.CancelScope(shield=True):  # a cancelled run still says so
            moved: bool = await self._call(self._require().move, owner, response_id, status, error)
        return moved

    def _object(
        self,
        response_id: str,
        record: BackgroundJob,
        status: str,
        error: dict[str, str] | None = None,
    ) -> ResponseObject:
        body = record.request
        made = translate.response_object(
            response_id, body.model, record.created_at, body, record.temperature
        )
        made.status = status  # type: ignore[assignment]
        made.error = ResponseError(**error) if error else None
        return made

    def _temperature(self, body: ResponsesRequest) -> float:
        default = self._settings.default_temperature
        return default if body.temperature is None else body.temperature

    def _require(self) -> BackgroundStore:
        if self._store is None:
            raise BadRequestException(
                "This server stores no responses (SESSIONS_ENABLED=false), so it runs none in "
                "the background: send background: false",
                param="background",
            )
        return self._store

    @staticmethod
    async def _call(call: Callable[..., Any], *args: Any) -> Any:
        """A store call off the event loop, retried while the store is under load."""
        try:
            return await asyncio.to_thread(retried, partial(call, *args), None)
        except Exception as exc:
            logger.exception("background store failed")
            raise StoreUnavailableException(
                "The background responses' store did not answer; retry shortly"
            ) from exc


class _EventSink:
    """Keeps a streamed run's events in chunks, at most every FLUSH_SECONDS.

    The run's error, from its in-band `error` event, is kept in `error`.
    """

    def __init__(self, store: BackgroundStore, owner: str, response_id: str, kept: bool) -> None:
        self._store, self._owner, self._id, self._kept = store, owner, response_id, kept
        self._pending: list[str] = []
        self._next = 0  # the number of the first pending event
        self._flushed = time.monotonic()
        self.error: dict[str, str] | None = None

    async def add(self, frame: str) -> None:
        """One event, written with those pending at most every FLUSH_SECONDS."""
        if frame.startswith("event: error\n"):
            data = json.loads(frame.split("data: ", 1)[1])
            self.error = {"code": data.get("code") or "server_error", "message": data["message"]}
        self._pending.append(frame)
        due = time.monotonic() - self._flushed >= FLUSH_SECONDS
        if due or len(self._pending) >= CHUNK_FRAMES:
            await self.flush()

    async def flush(self) -> None:
        """Write the pending events (a run not streamed keeps none)."""
        import anyio

        pending, self._pending = self._pending, []
        self._flushed = time.monotonic()
        if not (self._kept and pending):
            self._next += len(pending)
            return
        with anyio.CancelScope(shield=True):
            await asyncio.to_thread(self._store.append, self._owner, self._id, self._next, pending)
        self._next += len(pending)


def _caller_json(caller: Caller) -> dict[str, Any]:
    return {
        "owner": caller.owner,
        "known": caller.known,
        "free_mode_refusal": caller.free_mode_refusal,
        "peer": caller.peer,
        "policy": caller.policy.to_json() if caller.policy is not None else None,
    }


def _server_error() -> dict[str, str]:
    return {"code": "server_error", "message": "The background response could not be run"}


def _too_many(limit: int) -> RateLimitException:
    return RateLimitException(
        f"You already have {limit} background responses queued or in progress, the most one "
        "client may have; retry when one has finished",
        code="too_many_background_responses",
        retry_after=5,
    )


def _missing(response_id: str) -> NotFoundException:
    return NotFoundException(
        f"No stored response with id {response_id[:128]!r}", code="not_found", param="response_id"
    )
