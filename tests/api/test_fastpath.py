"""The ingest fast path (api/fastpath.py) answers exactly as the routes behind FastAPI's router would."""

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.routes import events
from api.telemetry import telemetry_config
from shared.settings import Settings
from tests.helpers import drain, stored

EVENT = {"user_id": "u", "event_type": "click"}


def test_other_methods_and_paths_still_go_through_the_router(client: TestClient) -> None:
    assert (client.get("/log_event").status_code, client.get("/log_event").json()) == (
        405, {"error": "method not allowed for this endpoint"})
    assert client.post("/log_event/", json=EVENT).status_code == 404  # no slash redirect, as on every route
    assert "/log_event" in client.get("/openapi.json").json()["paths"]


def test_an_unexpected_error_is_a_bare_500(settings: Settings, monkeypatch) -> None:
    async def broken(*_: object) -> str:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(events, "queue_records", broken)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        response = client.post("/log_event", json=EVENT, headers={"X-Request-Id": "req-1"})

    assert (response.status_code, response.json()) == (500, {"error": "internal server error"})
    assert response.headers["x-request-id"] == "req-1"  # to find the log line


def test_batch_over_the_router_limit_sent_chunked_is_a_json_413(settings: Settings) -> None:
    settings = settings.model_copy(update={"MAX_BATCH_BYTES": 4096})
    chunks = (b'{"events": [' + b'{"user_id": "u", "event_type": "click"},' * 200 for _ in range(1))
    with TestClient(create_app(settings)) as client:
        response = client.post("/log_events", content=chunks, headers={"Content-Type": "application/json"})
        accepted = client.post("/log_events", json={"events": [EVENT]})

    assert (response.status_code, response.json()["error"]) == (413, "request body is larger than 4096 bytes")
    assert accepted.status_code == 202
    assert drain(settings) == 1 and len(stored(settings, "events")) == 1


def test_telemetry_is_off_only_when_nothing_could_use_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FASTAPI_OTEL_AUTO_CONFIGURE", raising=False)
    assert telemetry_config() == {"tracing": False, "metrics": False, "logs": False}
    monkeypatch.setenv("FASTAPI_OTEL_AUTO_CONFIGURE", "true")
    assert telemetry_config() is None
