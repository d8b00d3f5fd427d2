"""Typed access to the clients the lifespan created. Routes never reach for globals."""

from dataclasses import dataclass, field
from functools import cached_property
from typing import Annotated

from arq.connections import ArqRedis
from fastapi import Depends, Request
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from api.appender import StreamAppender
from api.backlog import BacklogMonitor
from api.experiments import Experiments
from api.fallback import RedisFallback
from api.history import SessionHistory
from api.limits import Limits
from api.llm import LlmClient
from api.ratelimit import RateLimiter
from api.sources import SourceFinder
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
    jobs: ArqRedis  # enqueues arq jobs (exports) on the API's Redis connection pool
    experiments: Experiments
    sources: SourceFinder
    history: SessionHistory
    appender: StreamAppender
    fallback: RedisFallback = field(default_factory=RedisFallback)  # Redis-down mode of ingest

    @property
    def db(self) -> AsyncDatabase:
        return self.mongo[self.settings.MONGO_DB]

    @cached_property
    def limits(self) -> Limits:
        return Limits.from_settings(self.settings)


def app_state(request: Request) -> AppState:
    """For hot routes that skip dependency injection (it costs more than the rest of `/log_event`)."""
    # What `request.state.app` reads, without building a State wrapper on every request.
    return request.scope["state"]["app"]


async def get_state(request: Request) -> AppState:
    # async: FastAPI would run a sync dependency in a thread pool, a thread hop per request.
    return request.state.app


StateDep = Annotated[AppState, Depends(get_state)]
