"""The legacy Completions API, `POST /v1/completions`: prompt in, text out, whole or streamed.

Some clients still default to it (LlamaIndex's `OpenAILike`). The models here are chat models,
so the prompt is answered as the user message of a one-turn chat; the answer comes back as a
`text_completion`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from llm_server.config.settings import Settings
from llm_server.core.runner import TurnRunner
from llm_server.core.text import Text
from llm_server.core.turn import Outcome, RequestContext
from llm_server.exceptions import BadRequestException, LLMServerException
from llm_server.openai_api import parameters, translate
from llm_server.openai_api.errors import openai_error_body
from llm_server.openai_api.protocol import CompletionUsage, InputMessage, StreamOptions
from llm_server.openai_api.routes import ANSWERS, caller_key, json_answer, turn_for
from llm_server.values import ThoughtDelta
from llm_server.web.dependencies import get_app_settings, get_request_context, get_runner
from llm_server.web.sse import primed, sse, sse_response

router = APIRouter(prefix="/v1", tags=["openai-compatible"])


class CompletionRequest(BaseModel):
    """`POST /v1/completions`."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    model: Text = Field(min_length=1, max_length=128)
    prompt: Text | list[Text] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(1, ge=1, le=1, description="Only 1 is supported.")


class CompletionChoice(BaseModel):
    """The one choice of a text completion."""

    text: str
    index: int = 0
    logprobs: None = None
    finish_reason: Literal["stop", "length", "content_filter"] | None


class TextCompletion(BaseModel):
    """A `text_completion` object, whole or one streamed chunk of it."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: CompletionUsage | None = None


@router.post("/completions", response_model=TextCompletion, responses=ANSWERS)
async def create_completion(
    body: CompletionRequest,
    request: Request,
    runner: Annotated[TurnRunner, Depends(get_runner)],
    settings: Annotated[Settings, Depends(get_app_settings)],
    context: Annotated[RequestContext, Depends(get_request_context)],
) -> Response:
    """A text completion of `prompt` (one prompt: `n` and prompt lists are 1)."""
    parameters.refuse_unhonoured(body.model_extra, parameters.COMPLETIONS)
    prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
    if len(prompts) != 1:
        raise BadRequestException("prompt: exactly one prompt is supported", param="prompt")
    message = InputMessage(role="user", content=prompts[0])
    turn = turn_for(
        caller_key(request),
        runner,
        settings,
        [message],
        "prompt",
        model=body.model,
        temperature=body.temperature,
        max_tokens=body.max_tokens,
    )
    completion_id = translate.new_id("cmpl-")
    created = int(time.time())
    if not body.stream:
        outcome = await runner.run(turn, context)
        return json_answer(_completion(completion_id, body.model, created, outcome), outcome)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    stream = await primed(runner.stream(turn, context))
    return sse_response(_chunks(stream, completion_id, body.model, created, include_usage))


def _completion(completion_id: str, model: str, created: int, outcome: Outcome) -> TextCompletion:
    generation = outcome.generation
    choice = CompletionChoice(text=generation.text, finish_reason=generation.finish_reason)
    usage = translate.usage_of(generation)
    return TextCompletion(
        id=completion_id, created=created, model=model, choices=[choice], usage=usage
    )


async def _chunks(
    stream: AsyncIterator[str | ThoughtDelta | Outcome],
    completion_id: str,
    model: str,
    created: int,
    include_usage: bool,
) -> AsyncIterator[str]:
    def chunk(choices: list[CompletionChoice], usage: CompletionUsage | None = None) -> str:
        made = TextCompletion(id=completion_id, created=created, model=model, choices=choices)
        made.usage = usage
        return sse(made.model_dump(mode="json", exclude={"usage"} if usage is None else None))

    try:
        async for item in stream:
            if isinstance(item, ThoughtDelta):  # completions have no reasoning (none is asked)
                continue
            if isinstance(item, str):
                yield chunk([CompletionChoice(text=item, finish_reason=None)])
                continue
            reason = item.generation.finish_reason
            yield chunk([CompletionChoice(text="", finish_reason=reason)])
            if include_usage:
                yield chunk([], translate.usage_of(item.generation))
    except LLMServerException as exc:
        yield sse(openai_error_body(exc))
        return
    yield sse("[DONE]")
