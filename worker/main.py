"""The arq `WorkerSettings`: arq hosts the process, cron maintenance and jobs; the drain runs beside it.

Run with `python -m worker`, a thin entry point that builds the settings and supervises arq.
"""

import asyncio
import contextlib
import logging
import os
import socket
from typing import Any

from arq import cron
from arq.connections import RedisSettings
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.mongo import create_mongo_client, ensure_indexes
from shared.settings import Settings
from shared.stream import StreamNames
from worker.drain import Drainer
from worker.jobs import export as export_jobs
from worker.maintenance import move_parked_dead_letters, prune_idle_consumers

logger = logging.getLogger(__name__)


def consumer_name() -> str:
    """Unique per process; a restarted worker's old entries are reclaimed by idle time."""
    return os.environ.get("WORKER_NAME") or f"{socket.gethostname()}-{os.getpid()}"


def arq_redis_settings(settings: Settings) -> RedisSettings:
    # Retry forever with a capped backoff: arq's own loop otherwise dies when Redis restarts (arq #435, #498).
    redis_settings = RedisSettings.from_dsn(settings.REDIS_URL)
    redis_settings.retry = Retry(ExponentialBackoff(cap=settings.BACKOFF_MAX_S, base=0.1), retries=-1)
    redis_settings.retry_on_error = [RedisConnectionError, RedisTimeoutError, ConnectionError, OSError]
    redis_settings.conn_retries = 1_000_000
    return redis_settings


async def startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx["settings"]
    names = StreamNames.for_prefix(settings.STREAM_PREFIX)
    mongo = create_mongo_client(settings)
    db = mongo[settings.MONGO_DB]
    # XREADGROUP blocks up to ~1 s, so the socket timeout must be longer.
    stream_redis = Redis.from_url(settings.REDIS_URL, socket_timeout=10, socket_connect_timeout=2)
    drainer = Drainer(stream_redis, db, names, settings, consumer=consumer_name())
    ctx.update(mongo=mongo, db=db, names=names, stream_redis=stream_redis, drainer=drainer,
               drain_task=asyncio.create_task(drainer.run(), name="drain"),
               index_task=asyncio.create_task(_ensure_indexes_when_ready(db), name="indexes"))
    logger.info("worker started", extra={"consumer": drainer.consumer, "batch_size": settings.BATCH_SIZE,
                                         "flush_interval_ms": settings.FLUSH_INTERVAL_MS})


async def shutdown(ctx: dict[str, Any]) -> None:
    """Finish and ack the batch in hand, within SHUTDOWN_GRACE_S. Safe to call twice."""
    if ctx.get("shut_down") or "drainer" not in ctx:
        return
    ctx["shut_down"] = True
    ctx["drainer"].stop.set()
    ctx["index_task"].cancel()
    drain_task: asyncio.Task = ctx["drain_task"]
    done, _ = await asyncio.wait({drain_task}, timeout=ctx["settings"].SHUTDOWN_GRACE_S)
    if not done:
        logger.warning("drain did not finish in time; unacked entries will be reclaimed")
        drain_task.cancel()
        with contextlib.suppress(BaseException):
            await drain_task
    await ctx["stream_redis"].aclose()
    await ctx["mongo"].close()
    logger.info("worker stopped", extra={"stored_total": ctx["drainer"].stored_total})


async def _ensure_indexes_when_ready(db) -> None:
    # MongoDB may be down at start; the drain waits in the stream meanwhile.
    delay = 0.5
    while True:
        try:
            await ensure_indexes(db)
            return
        except Exception as exc:
            logger.warning("could not create indexes yet", extra={"error": type(exc).__name__})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30)


class WorkerSettings:
    """arq reads these attributes. `ctx["settings"]` is filled by the entry point or `on_startup`."""

    functions: list = [*export_jobs.FUNCTIONS]
    cron_jobs = [
        *export_jobs.CRON_JOBS,
        cron(move_parked_dead_letters, second={0, 30}, run_at_startup=True, unique=True, timeout=60),
        cron(prune_idle_consumers, minute={0, 15, 30, 45}, second=5, unique=True, timeout=60),
    ]
    on_startup = staticmethod(startup)
    on_shutdown = staticmethod(shutdown)
    max_jobs = 4
    handle_signals = False
    job_timeout = 3600
    health_check_interval = 30
