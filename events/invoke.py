"""`sam local invoke` without Docker: call the real Lambda handler in-process with an event file.

    make invoke EVENT=events/chat.json
    python events/invoke.py events/chat.json [--raw]

It sets the environment a Lambda function has (function name, region, memory, Powertools names;
anything already set wins), builds a Lambda context with a deadline, imports
`llm_server.lambda_handler`, calls `handler(event, context)` and prints the API Gateway response
with its body decoded. Logs and EMF metric lines go to stdout first, as on Lambda.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import importlib.util
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

LAMBDA_ENV = {
    "AWS_LAMBDA_FUNCTION_NAME": "llm-server-local",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
    "AWS_REGION": "ap-northeast-2",
    "AWS_DEFAULT_REGION": "ap-northeast-2",
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
    "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/llm-server-local",
    "AWS_LAMBDA_LOG_STREAM_NAME": "2026/11/25/[$LATEST]local",
    "POWERTOOLS_SERVICE_NAME": "llm-server",
    "POWERTOOLS_METRICS_NAMESPACE": "LLMServer",
    "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon here
    "LOG_FILE": "",
}


class LambdaContext:
    """The attributes and method of the context object the Lambda runtime passes."""

    def __init__(self, timeout_seconds: float = 29.0, memory_mb: int = 512) -> None:
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ["AWS_LAMBDA_FUNCTION_VERSION"]
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.invoked_function_arn = (
            f"arn:aws:lambda:{os.environ['AWS_REGION']}:123456789012:function:{self.function_name}"
        )
        self.log_group_name = os.environ["AWS_LAMBDA_LOG_GROUP_NAME"]
        self.log_stream_name = os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function would time out."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def use_lambda_environment() -> None:
    """Set the Lambda environment variables that are not set already, and find the package.

    The package is the one already on the path (`make test-lambda` puts `.aws-sam/build` there),
    else the source in `functions/`.
    """
    for name, value in LAMBDA_ENV.items():
        os.environ.setdefault(name, value)
    if importlib.util.find_spec("llm_server") is None:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "functions"))


def invoke(event: dict[str, Any], timeout_seconds: float = 29.0) -> dict[str, Any]:
    """Call the real handler with `event` and a fresh context; return its response."""
    use_lambda_environment()
    from llm_server.lambda_handler import handler

    return handler(event, LambdaContext(timeout_seconds))


def decoded_body(response: dict[str, Any]) -> str:
    """The response body as text, base64-decoded when API Gateway would decode it."""
    body = response.get("body") or ""
    return base64.b64decode(body).decode() if response.get("isBase64Encoded") else body


def main(argv: list[str] | None = None) -> int:
    """Invoke the handler with an event file and print the response."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "event", help="an API Gateway event file (events/chat.json), or - for stdin"
    )
    parser.add_argument("--raw", action="store_true", help="print the response exactly as returned")
    args = parser.parse_args(argv)
    text = sys.stdin.read() if args.event == "-" else Path(args.event).read_text(encoding="utf-8")
    response = invoke(json.loads(text))
    if not args.raw:
        body = decoded_body(response)
        with contextlib.suppress(ValueError):
            body = json.loads(body)
        response = {**response, "isBase64Encoded": False, "body": body}
    print(json.dumps(response, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
