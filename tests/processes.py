"""Runs the real API (uvicorn) and worker processes against given stores, for end-to-end and fault tests."""

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from scripts.devstack import Service, free_port

REPO_ROOT = Path(__file__).resolve().parent.parent


def app_env(redis_url: str, mongo_uri: str, **overrides: str) -> dict[str, str]:
    env = {
        "REDIS_URL": redis_url,
        "MONGODB_URI": mongo_uri,
        "MONGO_DB": "e2e",
        "STREAM_PREFIX": "e2e",
        "ADMIN_API_KEY": "e2e-admin",
        "LLM_MOCK": "true",
        "LLM_MOCK_CHUNK_DELAY_MS": "0",  # mock streams at full speed; the tests of the pacing set it
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "FLUSH_INTERVAL_MS": "50",
        "RECLAIM_IDLE_MS": "2000",
        "MONGO_TIMEOUT_MS": "2000",
        "BACKOFF_MAX_S": "1",
        "SHUTDOWN_GRACE_S": "5",
        "PYTHONPATH": str(REPO_ROOT),
    }
    env.update(overrides)
    return env


def api_service(env: dict[str, str], log_dir: Path, port: int | None = None) -> Service:
    port = port or free_port()
    return Service("api", [sys.executable, "-m", "api"], port, log_path=log_dir / f"api-{port}.log",
                   env={**env, "API_PORT": str(port)})


def worker_service(env: dict[str, str], log_dir: Path, name: str) -> Service:
    return Service(name, [sys.executable, "-m", "worker"], log_path=log_dir / f"{name}.log",
                   env={**env, "WORKER_NAME": name})


def wait_until(predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return predicate()


def export_ids(base_url: str, admin_key: str, kind: str | None = None) -> list[str]:
    response = httpx.get(f"{base_url}/export_data", headers={"Authorization": f"Bearer {admin_key}"}, timeout=30)
    response.raise_for_status()
    return [r["id"] for r in response.json() if kind is None or r["type"] == kind]


def wait_ready(base_url: str, timeout_s: float = 120) -> None:
    def ok() -> bool:
        try:
            return httpx.get(f"{base_url}/status", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    if not wait_until(ok, timeout_s, 0.25):
        raise TimeoutError(f"{base_url} not ready after {timeout_s} s")


def os_env_without_app_settings() -> dict[str, str]:
    """The parent's environment minus anything that would override the test's settings."""
    return {k: v for k, v in os.environ.items() if k not in app_env("", "")}
