"""The Lambda benches' stand-ins, served from a process of their own, as AWS and OpenAI are.

    python bench/stand_ins.py [--dynamodb-rtt-ms 3]

Starts the Responses API and Converse stand-ins and DynamoDB on moto (with a table made as the
template makes it), prints where they are as one JSON line, and serves until its stdin closes.
In the bench's own process their threads would compete with the handler under test for the
interpreter, and moto's garbage (some 450 objects in reference cycles per DynamoDB write)
would trigger collections of the handler's heap that a Lambda function never pays.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests")]

from helpers.aws import moto_server  # noqa: E402
from helpers.fake_bedrock import FakeBedrock  # noqa: E402
from helpers.fake_openai import FakeOpenAI  # noqa: E402
from helpers.faulty_proxy import FaultyProxy  # noqa: E402
from helpers.stores import dynamodb_table  # noqa: E402


def main() -> None:
    """Serve the stand-ins until stdin closes; their addresses on stdout first."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dynamodb-rtt-ms", type=float, default=0.0)
    rtt = parser.parse_args().dynamodb_rtt_ms / 1000
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server: one line a request
    with (
        FakeOpenAI() as openai,
        FakeBedrock() as bedrock,
        moto_server() as moto,
        contextlib.ExitStack() as stack,
    ):
        table, _ = dynamodb_table(moto)
        # With a round trip added, each DynamoDB call goes through a proxy delaying it (moto
        # answers one request at a time, so calls made at once could not overlap otherwise).
        dynamodb = stack.enter_context(FaultyProxy(moto, delay=rtt)).url if rtt else moto
        addresses = {"openai": openai.url, "bedrock": bedrock.url, "dynamodb": dynamodb}
        print(json.dumps({**addresses, "table": table}), flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
