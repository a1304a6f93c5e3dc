"""Local development server: `python -m llm_server` serves the API on HOST:SERVER_PORT."""

from __future__ import annotations

import asyncio
import sys

from llm_server.exceptions import ConfigurationException

SHUTDOWN_GRACE_SECONDS = 10


def _say(message: str) -> None:
    print(f"[llm-server] {message}", file=sys.stderr, flush=True)


def main() -> int:
    """Load settings, warm the local model, and serve until interrupted."""
    import uvicorn

    from llm_server.app import create_app
    from llm_server.config.settings import get_settings
    from llm_server.local_server import header_timeout_protocol, raise_open_file_limit

    try:
        settings = get_settings()
        app = create_app(settings)
        if settings.llm_provider != "openai":
            _say("loading the local model ...")
            asyncio.run(app.state.services.runner.warm_up())
            _say("local model ready")
    except ConfigurationException as exc:
        _say(f"cannot start: {exc.message}")
        return 2
    open_files = raise_open_file_limit()
    if settings.allow_anonymous and settings.identity_source == "client_key":
        _say(
            "callers without an X-Api-Key all share the owner 'anonymous' (sessions, stored "
            "responses, one concurrency share): give each client its own key (docs/security.md)"
        )
    address = f"http://{settings.host}:{settings.server_port}"
    _say(f"serving the API on {address}; the playground at {address}/, the docs at {address}/docs")
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.server_port,
        log_level="warning",
        http=header_timeout_protocol(settings.header_read_timeout_seconds),
        backlog=max(2048, min(open_files, 16384)),
        # SIGTERM: requests still running after this are cancelled (their generations stop).
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
