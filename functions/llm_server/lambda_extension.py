"""An internal Lambda extension that writes a turn's bookkeeping after its answer has gone.

Lambda freezes an execution environment once the runtime and every registered extension have
asked for their next event, not when the handler returns: the runtime posts the answer (the
caller has it), then waits. An internal extension is a thread of the function's own process
that registered through the Extensions API during init; holding back its own `next` for as
long as the turn's writes take keeps the environment alive for them (AWS's "Running code after
returning a response from an AWS Lambda function"). So a chat's usage-ledger row and quota
settlement, two DynamoDB round trips, no longer stand between the caller and the answer.

The handshake, per invocation: Lambda sends the extension the same INVOKE event (request id)
the handler gets; the handler `begin`s with that id, the stores `defer` their writes to it,
and the handler's end (`answered`) releases them to the extension thread, which runs them and
then asks for the next event. Work is taken only once the extension holds the invocation open
(it has its INVOKE event), so the environment cannot freeze before it runs; anywhere else (no
Extensions API: tests, `make invoke`, an emulator without one; registration refused) `defer`
returns False and the stores write before answering, as they did. The price on Lambda: the
writes still count in the invocation's billed duration (`PostRuntimeExtensionsDuration`), and
the environment takes its next request once they are done.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
from typing import Any

from llm_server.utils.after_answer import Work
from llm_server.utils.log import logger

API_VERSION = "2020-01-01"
NAME = "llm-server-after-answer"
REGISTER_TIMEOUT_SECONDS = 2.0  # during init: an API that never answers must not hang it
# How long a first `defer` waits for the extension's INVOKE event (it comes with the handler's);
# after one wait in vain, none until the extension shows it gets its events again.
HANDOVER_SECONDS = 0.2
# `next` failing this often in a row: the API is gone, the thread ends (writes wait for them).
NEXT_FAILURES = 5


class AfterAnswerExtension:
    """The internal extension: the invocation it holds open and the work left for after it."""

    def __init__(self, runtime_api: str, identifier: str) -> None:
        self._runtime_api = runtime_api
        self._identifier = identifier
        self._state = threading.Condition()
        self._request: str | None = None  # the handler's invocation
        self._held: str | None = None  # the invocation the extension holds open
        self._answered: str | None = None  # the last invocation whose answer has gone
        self._work: list[Work] = []
        self._handover = HANDOVER_SECONDS
        self._thread = threading.Thread(target=self._serve, name=NAME, daemon=True)

    @classmethod
    def start(cls) -> AfterAnswerExtension | None:
        """Register with the Extensions API and start the thread; None where there is none.

        Call it during init: Lambda refuses a registration once the runtime asks for its first
        event.
        """
        runtime_api = os.getenv("AWS_LAMBDA_RUNTIME_API")
        if not runtime_api:
            return None
        try:
            identifier = _register(runtime_api)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            logger.warning(
                "no after-answer extension: writes wait for them", extra={"reason": str(exc)}
            )
            return None
        extension = cls(runtime_api, identifier)
        extension._thread.start()
        return extension

    def begin(self, request_id: str) -> None:
        """The handler starts invocation `request_id`."""
        with self._state:
            self._request = request_id
            self._work = []

    def defer(self, work: Work, wait: bool = True) -> bool:
        """Leave `work` for after this invocation's answer, if the extension holds it open.

        Unless `wait` is False, a first `defer` waits for the extension's INVOKE event, which
        comes to its thread as the handler starts. Work taken without waiting (cheap: the
        request's log line) runs before the rest (store writes), so a store that hangs until
        the function's timeout cannot take it down with it.
        """
        with self._state:
            request = self._request
            if request is None or not self._thread.is_alive():
                return False
            handover = self._handover if wait else 0.0
            if not self._state.wait_for(lambda: self._held == request, handover):
                if handover:  # waited in vain: say so once, and wait no more until it does
                    logger.warning("after-answer extension: no INVOKE event; writes wait for them")
                    self._handover = 0.0
                return False
            self._work.insert(len(self._work) if wait else 0, work)
            return True

    def answered(self) -> None:
        """The handler's answer is ready: release its deferred work to the extension."""
        with self._state:
            self._answered, self._request = self._request, None
            self._state.notify_all()

    def _serve(self) -> None:
        """For each invocation: hold it open until answered, run its work, ask for the next."""
        connection = http.client.HTTPConnection(self._runtime_api)
        failures = 0
        while failures < NEXT_FAILURES:
            try:
                event = self._next(connection)
            except (OSError, http.client.HTTPException, ValueError):
                failures += 1
                logger.exception("after-answer extension: no next event")
                connection.close()
                time.sleep(0.1 * failures)
                continue
            failures = 0
            if event.get("eventType") == "INVOKE":
                self._hold(str(event.get("requestId")), float(event.get("deadlineMs", 0)) / 1000)

    def _hold(self, request_id: str, deadline: float) -> None:
        with self._state:
            self._held, self._handover = request_id, HANDOVER_SECONDS
            self._state.notify_all()
            self._state.wait_for(
                lambda: self._answered == request_id, timeout=max(0.0, deadline - time.time())
            )
            work, self._work, self._held = self._work, [], None
        for item in work:
            try:
                item()
            except Exception:  # each item handles its own; this is the last resort
                logger.exception("after-answer work failed")

    def _next(self, connection: http.client.HTTPConnection) -> dict[str, Any]:
        connection.request(
            "GET",
            f"/{API_VERSION}/extension/event/next",
            headers={"Lambda-Extension-Identifier": self._identifier},
        )
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise ValueError(f"next event: HTTP {response.status}")
        event: dict[str, Any] = json.loads(body)
        return event


def _register(runtime_api: str) -> str:
    """Register for INVOKE events (internal extensions get no SHUTDOWN); the identifier."""
    connection = http.client.HTTPConnection(runtime_api, timeout=REGISTER_TIMEOUT_SECONDS)
    try:
        connection.request(
            "POST",
            f"/{API_VERSION}/extension/register",
            body=json.dumps({"events": ["INVOKE"]}),
            headers={"Lambda-Extension-Name": NAME, "Content-Type": "application/json"},
        )
        response = connection.getresponse()
        response.read()
        identifier = response.getheader("Lambda-Extension-Identifier")
        if response.status != 200 or not identifier:
            raise ValueError(f"registration refused: HTTP {response.status}")
        return identifier
    finally:
        connection.close()
