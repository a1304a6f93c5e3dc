"""`GET /api/v1/system/info` and `GET /api/v1/health`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from llm_server import __version__
from llm_server.api.dependencies import get_chat_service
from llm_server.services.chat_service import ChatService
from llm_server.utils.lambda_runtime import lambda_info
from llm_server.utils.system_info import collect_system_info

router = APIRouter(prefix="/api/v1", tags=["system"])


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: answers as long as the process serves requests; touches no provider."""
    return {"status": "ok", "version": __version__}


@router.get("/system/info")
async def system_info(
    request: Request, service: Annotated[ChatService, Depends(get_chat_service)]
) -> dict[str, Any]:
    """The runtime environment, the app version, the provider setup and, on Lambda, the function."""
    return {
        "app_version": __version__,
        **collect_system_info(),
        **service.status(),
        "lambda": lambda_info(request.scope.get("aws.context")),
    }
