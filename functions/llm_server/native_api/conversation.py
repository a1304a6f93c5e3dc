"""The native API's side of a turn: from a `ChatRequest` to a `Turn` and back to a `ChatResponse`.

The conversation is the request's `conversation_history` when given, else the caller's stored
session; the system prompt is composed from the request's sections (`prompt.py`); a finished
turn is stored in the caller's session.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from functools import partial

from llm_server.config.settings import Settings
from llm_server.core.caller import Caller
from llm_server.core.formats import parse_output_format
from llm_server.core.turn import Outcome, RequestContext, Turn
from llm_server.exceptions import NotFoundException, ValidationException
from llm_server.native_api.prompt import compose_system_prompt, parse_history
from llm_server.native_api.schemas import ChatRequest, ChatResponse
from llm_server.stores.faults import retried
from llm_server.stores.sessions import SessionPage, SessionStore, StoredTurn
from llm_server.utils.log import logger
from llm_server.utils.request_context import annotate
from llm_server.values import ChatMessage, OutputFormat, SamplingOptions


class Conversations:
    """Turns for `/api/v1/chat`, with the caller's sessions (None: sessions are off)."""

    def __init__(self, settings: Settings, sessions: SessionStore | None) -> None:
        self._settings = settings
        self._sessions = sessions

    async def turn_for(self, request: ChatRequest, context: RequestContext) -> Turn:
        """Check a chat request's limits and compose its system prompt and messages.

        A session's stored turns are not read here: the runner reads them (`Turn.earlier`) once
        the turn holds its concurrency slot, so a refused request loads nothing.
        """
        settings = self._settings
        for field, count, limit in (
            ("conversation_history", len(request.conversation_history), settings.max_history_items),
            ("memory_context", len(request.memory_context), settings.max_memory_items),
        ):
            if count > limit:
                raise ValidationException(
                    f"{field} has {count} items; at most {limit} are allowed", param=field
                )
        messages = parse_history(request.conversation_history)
        earlier = None
        if not messages and self._sessions is not None and request.session_id:
            sessions, session_id = self._sessions, request.session_id

            async def earlier() -> tuple[ChatMessage, ...]:  # read once the turn holds a slot
                return tuple(await self._stored_history(sessions, context, session_id))

        messages.append(ChatMessage("user", request.user_message))
        output_format = OutputFormat()
        if request.response_format is not None:
            output_format = parse_output_format(request.response_format, "response_format")
        instructions = compose_system_prompt(
            request.system_message,
            request.role,
            request.memory_context,
            request.instructions,
            settings.default_system_message,
        )
        return Turn(
            instructions=instructions,
            messages=tuple(messages),
            model=request.model,
            temperature=request.temperature,
            max_tokens=request.max_tokens,
            caller_key=request.openai_api_key,
            free_mode=request.free_mode,
            options=SamplingOptions(output_format=output_format),
            earlier=earlier,
        )

    async def remember(
        self, context: RequestContext, request: ChatRequest, outcome: Outcome
    ) -> bool:
        """Store the exchange in the caller's session; whether it was (or needed no storing).

        Retried while the request has time (`retried`): the next turn reads it. A failure past
        that is logged and the answer still sent, saying it was not saved. A turn a filter
        stopped is not kept: every later turn would send its words again, to be stopped again.
        """
        if self._sessions is None or not request.session_id:
            return True
        if outcome.generation.finish_reason == "content_filter":
            return True
        generation = outcome.generation
        turn = StoredTurn(
            user=request.user_message,
            assistant=generation.text,
            model=generation.model,
            input_tokens=generation.input_tokens,
            output_tokens=generation.output_tokens,
            created_at=datetime.now(UTC).isoformat(),
        )
        append = partial(self._sessions.append, context.caller.owner, request.session_id, turn)
        try:
            await asyncio.to_thread(retried, append, context.deadline)
        except Exception:
            logger.exception("could not store the session turn")
            return False
        return True

    async def page(
        self, caller: Caller, session_id: str, limit: int, after: int | None
    ) -> SessionPage:
        """One page of the caller's session, oldest first: at most `limit` turns after `after`."""
        store = self._store()
        return await asyncio.to_thread(store.page, caller.owner, session_id, limit, after)

    async def forget(self, caller: Caller, session_id: str) -> int:
        """Erase the caller's session; return how many turns were removed."""
        store = self._store()
        return await asyncio.to_thread(store.delete, caller.owner, session_id)

    def _store(self) -> SessionStore:
        if self._sessions is None:
            raise NotFoundException(
                "Sessions are disabled on this server (SESSIONS_ENABLED=false)",
                code="sessions_disabled",
            )
        return self._sessions

    async def _stored_history(
        self, store: SessionStore, context: RequestContext, session_id: str
    ) -> list[ChatMessage]:
        """The session's recent turns as messages, within SESSION_MAX_TURNS and _MAX_TOKENS."""
        settings = self._settings
        recent = partial(store.recent, context.caller.owner, session_id, settings.session_max_turns)
        turns = await asyncio.to_thread(retried, recent, context.deadline)
        budget = settings.session_max_tokens
        kept: list[StoredTurn] = []
        for turn in reversed(turns):  # newest first, until the token budget is spent
            budget -= estimate_tokens(turn.user) + estimate_tokens(turn.assistant)
            if budget < 0:
                break
            kept.append(turn)
        messages: list[ChatMessage] = []
        for turn in reversed(kept):
            messages += [ChatMessage("user", turn.user), ChatMessage("assistant", turn.assistant)]
        annotate(session_turns_used=len(kept))
        return messages


NOT_SAVED = (
    "The reply was not saved to the session (its store is unavailable): the next turn will not "
    "see it unless sent in conversation_history"
)


FILTERED = (
    "The content filter stopped this turn (the server's guardrail, or the model's own): "
    "response_text is its message, and the turn was not kept in the session"
)


def chat_response(request: ChatRequest, outcome: Outcome, saved: bool = True) -> ChatResponse:
    """The `/api/v1/chat` response for a finished turn (`saved`: whether the session has it).

    A turn the content filter stopped answers the filter's message with `success: false` and
    `error_message` saying so (a 200: the request itself was served).
    """
    generation = outcome.generation
    filtered = generation.finish_reason == "content_filter"
    notes = [FILTERED] if filtered else []
    notes += [] if saved else [NOT_SAVED]
    return ChatResponse(
        session_id=request.session_id,
        response_text=generation.text,
        model=generation.model,
        input_tokens=generation.input_tokens,
        output_tokens=generation.output_tokens,
        total_tokens_used=generation.total_tokens,
        output_format=generation.output_format,
        created_at=generation.created_at,
        temperature=outcome.temperature,
        instructions=request.instructions,
        response_time=round(outcome.seconds, 4),
        success=not filtered,
        error_message="; ".join(notes) or None,
        api_key_source=outcome.key_source.value,
    )


def estimate_tokens(text: str) -> int:
    """A provider-neutral token estimate for history budgets: about 4 UTF-8 bytes a token."""
    return max(1, len(text.encode()) // 4)
