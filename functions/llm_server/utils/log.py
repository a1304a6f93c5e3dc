"""Structured JSON logging through AWS Lambda Powertools' Logger, the same on Lambda and locally.

Locally the same JSON lines also go to LOG_FILE, so a developer can `tail` them (the template sets
it empty on Lambda, where stdout is the log).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from aws_lambda_powertools import Logger

SERVICE_NAME = "llm-server"

logger = Logger(service=os.getenv("POWERTOOLS_SERVICE_NAME", SERVICE_NAME), utc=True)


def configure_logging(level: str, log_file: str | None) -> None:
    """Apply the configured level and mirror the JSON lines into `log_file` (empty: don't).

    On Lambda the template sets `LOG_FILE` empty: stdout is the log there.
    """
    logger.setLevel(level)
    if not log_file:
        return
    path = Path(log_file).resolve()
    std_logger = logging.getLogger(logger.name)
    if any(getattr(h, "baseFilename", None) == str(path) for h in std_logger.handlers):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logger.registered_formatter)
    std_logger.addHandler(handler)
