"""The Lambda benches' stand-ins, served from a process of their own, as AWS and OpenAI are.

    python bench/stand_ins.py [--dynamodb-rtt-ms 3]

Starts the Responses API and Converse stand-ins, DynamoDB on moto (with a table made as the
template makes it) and Lambda's Extensions API, prints where they are as one JSON line, then
plays Lambda's side of each invocation as the bench's commands on stdin say (`invoke ID`,
`finished ID`, `registered`: `ExtensionsAPIClient` sends them), until stdin closes. In the
bench's own process their threads would compete with the handler under test for the
interpreter (the Extensions API sends its INVOKE event as the handler starts), and moto's
garbage (some 450 objects in reference cycles per DynamoDB write) would trigger collections of
the handler's heap that a Lambda function never pays.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parents[1]

if TYPE_CHECKING:
    from helpers.runtime_api import ExtensionsAPI


def main() -> None:
    """Serve the stand-ins until stdin closes; their addresses on stdout first."""
    sys.path[:0] = [str(ROOT / "tests")]  # here only: the bench's process loads none of it
    from helpers.aws import moto_server
    from helpers.fake_bedrock import FakeBedrock
    from helpers.fake_openai import FakeOpenAI
    from helpers.faulty_proxy import FaultyProxy
    from helpers.runtime_api import ExtensionsAPI
    from helpers.stores import dynamodb_table

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dynamodb-rtt-ms", type=float, default=0.0)
    rtt = parser.parse_args().dynamodb_rtt_ms / 1000
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server: one line a request
    with (
        FakeOpenAI() as openai,
        FakeBedrock() as bedrock,
        moto_server() as moto,
        ExtensionsAPI() as lambda_api,
        contextlib.ExitStack() as stack,
    ):
        table, _ = dynamodb_table(moto)
        # With a round trip added, each DynamoDB call goes through a proxy delaying it (moto
        # answers one request at a time, so calls made at once could not overlap otherwise).
        dynamodb = stack.enter_context(FaultyProxy(moto, delay=rtt)).url if rtt else moto
        addresses = {"openai": openai.url, "bedrock": bedrock.url, "dynamodb": dynamodb}
        print(json.dumps({**addresses, "table": table, "runtime_api": lambda_api.address}))
        sys.stdout.flush()
        for line in sys.stdin:
            _obey(lambda_api, *line.split())


def _obey(lambda_api: ExtensionsAPI, command: str, *args: str) -> None:
    """One of the bench's commands to Lambda's side; what it asks for, as a JSON line."""
    if command == "invoke":
        lambda_api.invoke(args[0])
        return
    answer = lambda_api.finished(args[0]) if command == "finished" else lambda_api.registered
    print(json.dumps(answer), flush=True)


class ExtensionsAPIClient:
    """The bench's end: the stand-in Extensions API in the stand-ins' process, as an object.

    The same calls as `helpers.runtime_api.ExtensionsAPI`'s that the benches make.
    """

    def __init__(self, address: str, commands: IO[str], answers: IO[str]) -> None:
        self.address = address
        self._commands, self._answers = commands, answers

    def invoke(self, request_id: str) -> None:
        """Send the extension its INVOKE event for `request_id` (not waiting for it)."""
        self._commands.write(f"invoke {request_id}\n")
        self._commands.flush()

    def finished(self, request_id: str) -> bool:
        """Wait until the extension, having taken `request_id`, asks for its next event."""
        return bool(self._ask(f"finished {request_id}"))

    @property
    def registered(self) -> list[dict[str, Any]]:
        """The extensions registered so far."""
        registered: list[dict[str, Any]] = self._ask("registered")
        return registered

    def _ask(self, command: str) -> Any:
        self._commands.write(command + "\n")
        self._commands.flush()
        return json.loads(self._answers.readline())


if __name__ == "__main__":
    main()
