"""The application factory and its lifespan."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from arq.connections import ArqRedis
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from redis.asyncio import BlockingConnectionPool, Redis

from api.appender import StreamAppender
from api.backlog import BacklogMonitor
from api.deps import AppState
from api.errors import install_error_handlers
from api.experiment_spec import load_experiment
from api.experiments import Experiments
from api.fastpath import IngestFastPath
from api.history import SessionHistory
from api.limits import Limits
from api.llm import LlmClient
from api.middleware import RequestContextMiddleware
from api.model_list import load_model_list
from api.openapi import install_openapi
from api.ratelimit import RateLimiter
from api.routes import events, experiment, export, export_jobs, queries, status
from api.sources import SourceFinder
from api.telemetry import telemetry_config
from shared.mongo import create_mongo_client
from shared.runtime import tune_gc
from shared.settings import Settings
from shared.stream import StreamNames, ensure_group

logger = logging.getLogger(__name__)


def create_redis_client(settings: Settings) -> Redis:
    # Short timeouts: a dead Redis must turn into the MongoDB fallback quickly, not a hung request.
    # The blocking pool opens connections outside its lock: the default pool holds its lock while it
    # connects, so against a hung Redis (which still accepts TCP) every call queued behind each
    # connection attempt in turn (redis/redis-py#3842), and ingest latency grew by the second.
    timeout_s = settings.REDIS_TIMEOUT_MS / 1000
    pool = BlockingConnectionPool.from_url(settings.REDIS_URL, max_connections=100, timeout=timeout_s,
                                           socket_timeout=timeout_s, socket_connect_timeout=min(timeout_s, 1.0),
                                           health_check_interval=10)
    return Redis.from_pool(pool)


def create_app(settings: Settings) -> FastAPI:
    load_experiment(settings)  # fail fast, before serving: an invalid EXPERIMENT_FILE raises, naming the file
    load_model_list(settings)  # so does an invalid LLM_MODEL_LIST (the models it must hold are checked in the lifespan)
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, AppState]]:
        redis = create_redis_client(settings)
        mongo = create_mongo_client(settings)
        names = StreamNames.for_prefix(settings.STREAM_PREFIX)
        backlog = BacklogMonitor(redis, names, settings.QUEUE_HIGH_WATERMARK)
        experiments = Experiments(settings, redis, names)
        sources = SourceFinder(settings)
        sources.check_conditions(experiments.conditions().values())  # an arm's unknown provider or set stops startup
        llm = LlmClient(settings, models=[c.model for c in experiments.conditions().values()])
        # Shares the pool and connects lazily: arq.create_pool would ping and fail while Redis is down.
        jobs = ArqRedis(redis.connection_pool, default_queue_name=names.arq_queue)
        try:
            await ensure_group(redis, names)
        except Exception as exc:  # Redis down at start: ingest falls back to MongoDB until it returns
            logger.warning("redis unavailable at start", extra={"error": type(exc).__name__})
        backlog.start()
        logger.info("api started", extra={"llm_mock": llm.is_mock, "model": llm.model_used})
        rate_limiter = RateLimiter(redis, names, settings.QUERY_RATE_PER_MIN, settings.QUERY_IP_RATE_PER_MIN)
        await experiments.start()
        history = SessionHistory(redis, names, settings, experiments.max_history_turns)
        appender = StreamAppender(redis, names.records, timeout_s=settings.REDIS_TIMEOUT_MS / 1000)
        state = AppState(settings, redis, mongo, names, backlog, llm, rate_limiter, jobs, experiments, sources, history,
                         appender)
        try:
            yield {"app": state}
        finally:
            await sources.aclose()
            await backlog.stop()
            await jobs.aclose()
            await redis.aclose()
            await mongo.close()

    app = FastAPI(
        title="fastapi-llm-logger",
        summary="Logs LLM queries and user interactions: API -> Redis stream -> worker -> MongoDB.",
        lifespan=lifespan,
        # No 307 to the slash-less path: its Location is built from the client's Host header.
        redirect_slashes=False,
        telemetry=telemetry_config(),
    )
    install_error_handlers(app)
    install_openapi(app, Limits.from_settings(settings))
    for module in (status, events, queries, export, export_jobs, experiment):
        # Per router, not FastAPI(max_body_size=...): the app-level limiter sits outside our middleware
        # and answers plain text; this one sits inside, so its 413 leaves as JSON like every error.
        app.include_router(module.router, max_body_size=settings.MAX_BATCH_BYTES)
    _add_middleware(app, settings)
    return app


def _add_middleware(app: FastAPI, settings: Settings) -> None:
    # Innermost of ours: CORS and the request context wrap the ingest fast path as they wrap the routes.
    app.add_middleware(IngestFastPath, endpoints={"/log_event": events.log_event, "/log_events": events.log_events},
                       max_body_bytes=settings.MAX_BATCH_BYTES)
    origins = settings.cors_origins
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Content-Type", "Content-Encoding", "Authorization", "X-API-Key", "X-Request-Id"],
            expose_headers=["Retry-After", "X-Request-Id"],
            max_age=600,
        )
    app.add_middleware(RequestContextMiddleware, allowed_origins=frozenset(origins))


def create_app_from_env() -> FastAPI:
    """The uvicorn factory: `uvicorn --factory api.main:create_app_from_env`."""
    from shared.logging import configure_logging

    settings = Settings()
    configure_logging(settings.LOG_LEVEL, "api")
    app = create_app(settings)
    tune_gc()
    return app
