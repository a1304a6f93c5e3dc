"""AWS Lambda entry point of background responses, and how the API function starts one.

API Gateway ends every request at 29 seconds; a background response runs past that in a
function of its own (`BackgroundFunction` in template.yaml, BACKGROUND_FUNCTION to the API's
functions): the API function that queued it invokes it asynchronously (`InvocationType=Event`,
no retries: a run is started once, and one that dies is `failed` when next read), and it runs
the response to its end, up to its own timeout (BACKGROUND_TIMEOUT_SECONDS, at most Lambda's
15 minutes). Its own function, not the API's: its timeout and reserved concurrency are its own,
so long runs neither lengthen the API's requests nor take the concurrency interactive callers
need.

The event names the run and carries the caller's own OpenAI key, if any (never stored).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from llm_server.utils.log import logger

if TYPE_CHECKING:
    from llm_server.app import Services

EVENT_KEY = "llm_server_background_response"
_services: Services | None = None
_event_loop: asyncio.AbstractEventLoop | None = None


def invoker(function: str, client: Any = None) -> Callable[[str, str, str], Awaitable[None]]:
    """Starts a queued run by invoking `function` asynchronously (`Services.start_background`)."""

    async def start(owner: str, response_id: str, caller_key: str) -> None:
        lambda_client = client or _lambda_client()
        event = {EVENT_KEY: {"owner": owner, "id": response_id, "caller_key": caller_key}}
        invoke = partial(
            lambda_client.invoke,
            FunctionName=function,
            InvocationType="Event",
            Payload=json.dumps(event).encode(),
        )
        await asyncio.to_thread(invoke)

    return start


def _lambda_client() -> Any:
    import boto3

    return boto3.client("lambda")


def handler(event: dict[str, Any], context: Any) -> None:
    """Run the background response the event names to its end."""
    run = event.get(EVENT_KEY) if isinstance(event, dict) else None
    if not isinstance(run, dict):
        logger.error("not a background response's event")
        return
    _loop().run_until_complete(_run(run["owner"], run["id"], run.get("caller_key", "")))


async def _run(owner: str, response_id: str, caller_key: str) -> None:
    from llm_server.openai_api.routes import response_turn

    services = _built()
    turn_of = partial(response_turn, runner=services.runner, settings=services.settings)
    logger.append_keys(response_id=response_id)
    try:
        await services.background.run(owner, response_id, caller_key, turn_of)
    finally:
        await services.usage.flush()  # the invocation ends here: nothing may wait for later


def _loop() -> asyncio.AbstractEventLoop:
    """One event loop an execution environment: the clients made on it serve the next run."""
    global _event_loop
    if _event_loop is None:
        _event_loop = asyncio.new_event_loop()
    return _event_loop


def _built() -> Services:
    """The services, built once an execution environment (its clients kept for the next run)."""
    global _services
    if _services is None:
        from llm_server.app import Services
        from llm_server.config.settings import get_settings
        from llm_server.utils.log import configure_logging

        settings = get_settings()
        configure_logging(settings.log_level, settings.log_file)
        _services = Services.from_settings(settings)
    return _services
