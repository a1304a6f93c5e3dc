"""Structured JSON logging through AWS Lambda Powertools' Logger, the same on Lambda and locally.

Locally (not on Lambda) the same JSON lines also go to LOG_FILE, so a developer can `tail` them.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from aws_lambda_powertools import Logger

SERVICE_NAME = "llm-server"

logger = Logger(service=os.getenv("POWERTOOLS_SERVICE_NAME", SERVICE_NAME), utc=True)


def running_on_lambda() -> bool:
    """True inside an AWS Lambda execution environment."""
    return "AWS_LAMBDA_FUNCTION_NAME" in os.environ


def configure_logging(level: str, log_file: str | None) -> None:
    """Apply the configured level and, off Lambda, mirror the JSON lines into `log_file`."""
    logger.setLevel(level)
    if running_on_lambda() or not log_file:
        return
    path = Path(log_file).resolve()
    std_logger = logging.getLogger(logger.name)
    if any(getattr(h, "baseFilename", None) == str(path) for h in std_logger.handlers):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logger.registered_formatter)
    std_logger.addHandler(handler)
