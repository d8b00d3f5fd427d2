import asyncio
import contextlib

from fastapi import APIRouter, Response

from api.deps import AppState, StateDep
from shared.stream import backlog_size

router = APIRouter(tags=["status"])

_PROBE_TIMEOUT_S = 1.0


@router.get("/status")
async def status(state: StateDep) -> dict:
    """Always 200 while the process runs; the other keys say what it can reach."""
    redis_ok, backlog = await _probe_redis(state)
    return {
        "status": "running",
        "redis": redis_ok,
        "mongodb": await _probe_mongo(state),
        "queue_depth": backlog,
        "llm_mock": state.llm.is_mock,
        "model": state.llm.model_used,
    }


@router.head("/status", include_in_schema=False)
async def status_head() -> Response:
    """For uptime monitors that send HEAD: 200 while the process runs, without probing the stores."""
    return Response(status_code=200)


async def _probe_redis(state: AppState) -> tuple[bool, int | None]:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(_PROBE_TIMEOUT_S):
            return True, await backlog_size(state.redis, state.names)
    return False, None


async def _probe_mongo(state: AppState) -> bool:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(_PROBE_TIMEOUT_S):
            await state.db.command("ping")
            return True
    return False
