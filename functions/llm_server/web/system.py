"""`GET /api/v1/system/info` and `GET /api/v1/health`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from llm_server import __version__
from llm_server.config.settings import Settings
from llm_server.core.runner import TurnRunner
from llm_server.utils.lambda_runtime import lambda_info
from llm_server.utils.system_info import collect_system_info
from llm_server.web.dependencies import get_app_settings, get_runner

router = APIRouter(prefix="/api/v1", tags=["system"])

# What only SYSTEM_INFO_DETAIL=full shows: any API key holder may call this route on AWS, and
# file paths, process ids and the upstream's address help an attacker more than a caller.
_FULL_DETAIL_ONLY = frozenset({"process_id", "executable", "model_path", "base_url"})


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: answers as long as the process serves requests; touches no provider."""
    return {"status": "ok", "version": __version__}


@router.get("/system/info")
async def system_info(
    request: Request,
    runner: Annotated[TurnRunner, Depends(get_runner)],
    settings: Annotated[Settings, Depends(get_app_settings)],
) -> dict[str, Any]:
    """The runtime environment, the app version, the provider setup and, on Lambda, the function.

    Paths, process ids and the upstream URL only with `SYSTEM_INFO_DETAIL=full`.
    """
    info = {
        "app_version": __version__,
        **collect_system_info(),
        **runner.status(),
        "lambda": lambda_info(request.scope.get("aws.context")),
    }
    return info if settings.system_info_detail == "full" else _without_detail(info)


def _without_detail(info: dict[str, Any]) -> dict[str, Any]:
    return {
        key: _without_detail(value) if isinstance(value, dict) else value
        for key, value in info.items()
        if key not in _FULL_DETAIL_ONLY
    }
