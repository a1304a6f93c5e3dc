"""The service's log formatter writes exactly the lines Powertools' own formatter writes."""

import io
import json
import logging

import pytest
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from llm_server.utils.log import logger


@pytest.fixture
def lines():
    """Each `logger.info` call written by ours and by Powertools' formatter, parsed."""
    logger.append_keys(function_request_id="req-1", cold_start=False)
    ours = logger.registered_formatter
    theirs = LambdaPowertoolsFormatter(utc=True)
    theirs.append_keys(**ours.log_format)
    std_logger = logging.getLogger(logger.name)
    level = std_logger.level
    std_logger.setLevel(logging.INFO)
    streams = {name: io.StringIO() for name in ("ours", "theirs")}
    handlers = []
    for name, formatter in (("ours", ours), ("theirs", theirs)):
        handler = logging.StreamHandler(streams[name])
        handler.setFormatter(formatter)
        std_logger.addHandler(handler)
        handlers.append(handler)
    try:
        yield lambda: [[json.loads(x) for x in s.getvalue().splitlines()] for s in streams.values()]
    finally:
        logger.remove_keys(["function_request_id", "cold_start"])
        for handler in handlers:
            std_logger.removeHandler(handler)
        std_logger.setLevel(level)


@pytest.mark.parametrize(
    ("args", "extra"),
    [
        (("request",), {"method": "POST", "status": 200, "latency_ms": 1.5, "session_id": None}),
        (("세션 요청",), {"client": "apikey:abc"}),
        (("123",), {}),
        (('{"a": [1, 2]}',), {}),
        ((" true",), {}),
        (("",), {}),
        (("turn %s of %d", "x", 3), {}),
        (({"k": "v"},), {}),
    ],
)
def test_lines_match_powertools(lines, args, extra):
    logger.info(*args, extra=extra)
    ours, theirs = lines()
    assert len(ours) == len(theirs) == 1
    for line in (ours[0], theirs[0]):
        assert line.pop("timestamp")
    assert list(ours[0].items()) == list(theirs[0].items())  # same keys, same order


def test_an_exception_line_matches_powertools(lines):
    try:
        raise ValueError("bad value")
    except ValueError:
        logger.exception("failed", extra={"error_code": "x"})
    ours, theirs = lines()
    for line in (ours[0], theirs[0]):
        line.pop("timestamp")
    assert ours[0] == theirs[0]
    assert ours[0]["exception_name"] == "ValueError"
