"""The Lambda Web Adapter's SnapStart hooks, for the streaming function.

Behind the adapter the app is a process of its own, where Lambda's Python runtime hooks never
run. The adapter (1.1.0 and later) POSTs instead to the paths named by
`AWS_LWA_SNAPSTART_BEFORE_CHECKPOINT_PATH` (before the snapshot: prime) and
`AWS_LWA_SNAPSTART_AFTER_RESTORE_PATH` (after each restore: renew), and refuses those paths to
callers with a 403. The routes exist only where the variables are set (the template sets them on
that function alone), and a request relayed from an invocation, which carries the adapter's
`x-amzn-request-context`, is a 404 here too: no caller can make an environment drop its clients.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping

from fastapi import FastAPI, Request, Response

from llm_server.exceptions import NotFoundException
from llm_server.lambda_lifecycle import prime, renew

HOOKS = {
    "AWS_LWA_SNAPSTART_BEFORE_CHECKPOINT_PATH": prime,
    "AWS_LWA_SNAPSTART_AFTER_RESTORE_PATH": renew,
}


def add_snapstart_hooks(app: FastAPI, environ: Mapping[str, str] = os.environ) -> None:
    """Serve the adapter's hook paths that `environ` names (none where it names none)."""
    for variable, hook in HOOKS.items():
        path = environ.get(variable)
        if path:
            app.add_api_route(path, _endpoint(hook), methods=["POST"], include_in_schema=False)


def _endpoint(hook: Callable[[FastAPI], None]) -> Callable[[Request], Awaitable[Response]]:
    async def run_hook(request: Request) -> Response:
        if "x-amzn-request-context" in request.headers:  # an invocation, not the adapter
            raise NotFoundException("Not Found")
        hook(request.app)
        return Response(status_code=204)

    return run_hook
