"""Real redis-server and SecantusDB, started once per session on free ports and stopped by PID.

Each test gets its own stream prefix and database, so every test starts clean.
"""

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from api.main import create_app  # noqa: E402
from scripts.devstack import (  # noqa: E402
    Service,
    free_port,
    redis_service,
    secantus_service,
    wait_mongo_ready,
    wait_redis_ready,
)
from shared.settings import Settings  # noqa: E402

ADMIN_KEY = "test-admin-key"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = redis_service(free_port(), tmp_path_factory.mktemp("redis")).start()
    wait_redis_ready(redis_url(service))
    yield service
    service.stop()


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = secantus_service(free_port(), tmp_path_factory.mktemp("mongo")).start()
    wait_mongo_ready(mongo_uri(service))
    yield service
    service.stop()


def redis_url(service: Service) -> str:
    return f"redis://127.0.0.1:{service.port}/0"


def mongo_uri(service: Service) -> str:
    return f"mongodb://127.0.0.1:{service.port}/?directConnection=true"


def make_settings(redis: Service, mongo: Service, **overrides: object) -> Settings:
    tag = uuid.uuid4().hex[:10]
    values: dict[str, object] = {
        "REDIS_URL": redis_url(redis),
        "MONGODB_URI": mongo_uri(mongo),
        "MONGO_DB": f"test_{tag}",
        "STREAM_PREFIX": f"test-{tag}",
        "ADMIN_API_KEY": ADMIN_KEY,
        "LLM_MOCK": True,
        "LLM_MOCK_CHUNK_DELAY_MS": 0,  # mock streams at full speed; the tests of the pacing set it
        "FLUSH_INTERVAL_MS": 20,
        "RECLAIM_IDLE_MS": 300,
        "QUERY_RATE_PER_MIN": 1000,
        "QUERY_IP_RATE_PER_MIN": 1000,
        "MONGO_TIMEOUT_MS": 2000,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
def settings(redis_server: Service, mongo_server: Service) -> Settings:
    return make_settings(redis_server, mongo_server)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
