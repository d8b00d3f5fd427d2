"""Typed access to the clients the lifespan created. Routes never reach for globals."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from api.backlog import BacklogMonitor
from api.llm import LlmClient
from api.ratelimit import RateLimiter
from api.storable import Limits
from shared.settings import Settings
from shared.stream import StreamNames


@dataclass(frozen=True)
class AppState:
    """What the lifespan yields; Starlette copies it onto every `request.state`."""

    settings: Settings
    redis: Redis
    mongo: AsyncMongoClient
    names: StreamNames
    backlog: BacklogMonitor
    llm: LlmClient
    rate_limiter: RateLimiter

    @property
    def db(self) -> AsyncDatabase:
        return self.mongo[self.settings.MONGO_DB]

    @property
    def limits(self) -> Limits:
        # The body itself is one level; extra_data's own nesting gets the configured depth.
        return Limits(max_depth=self.settings.MAX_EXTRA_DEPTH + 1, max_keys=self.settings.MAX_EXTRA_KEYS)


def app_state(request: Request) -> AppState:
    """For hot routes that skip dependency injection (it costs more than the rest of `/log_event`)."""
    return request.state.app


async def get_state(request: Request) -> AppState:
    # async: FastAPI would run a sync dependency in a thread pool, a thread hop per request.
    return request.state.app


StateDep = Annotated[AppState, Depends(get_state)]
