"""Capture the JSON lines of the service's Powertools logger."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from llm_server.utils.log import logger


class CapturedLogs:
    """The lines written while capturing, raw and parsed."""

    def __init__(self, stream: io.StringIO) -> None:
        self._stream = stream

    @property
    def text(self) -> str:
        return self._stream.getvalue()

    def records(self) -> list[dict]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]


@contextmanager
def capture_logs() -> Iterator[CapturedLogs]:
    """Add a handler with the Powertools JSON formatter to the service's logger."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    std_logger = logging.getLogger(logger.name)
    std_logger.addHandler(handler)
    try:
        yield CapturedLogs(stream)
    finally:
        std_logger.removeHandler(handler)
