"""Access control: admin key, ingest keys, origins, /query rate limits, and what errors reveal."""

import logging
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.ratelimit import WINDOW_S
from scripts.devstack import Service
from shared.logging import ContextFilter
from shared.settings import Settings
from tests.conftest import ADMIN_KEY, make_settings
from tests.helpers import drain, stored, stream_length

EVENT = {"user_id": "u1", "event_type": "click"}
QUERY = {"user_id": "u1", "query": "hello"}
INGEST_KEY = "public-ingest-key"


def app_client(redis: Service, mongo: Service, **overrides: object) -> tuple[TestClient, Settings]:
    settings = make_settings(redis, mongo, **overrides)
    return TestClient(create_app(settings)), settings


@pytest.fixture
def keyed(redis_server: Service, mongo_server: Service) -> Iterator[tuple[TestClient, Settings]]:
    client, settings = app_client(redis_server, mongo_server, INGEST_API_KEYS=f"other-key, {INGEST_KEY}")
    with client:
        yield client, settings


@pytest.fixture
def cors(redis_server: Service, mongo_server: Service) -> Iterator[tuple[TestClient, Settings]]:
    client, settings = app_client(redis_server, mongo_server, CORS_ORIGINS="https://app.example/, https://b.example")
    with client:
        yield client, settings


# Admin key


def test_admin_endpoints_refuse_ingest_keys_in_every_form(keyed: tuple[TestClient, Settings]) -> None:
    client, _ = keyed
    for headers, params in (({"Authorization": f"Bearer {INGEST_KEY}"}, {}), ({"X-API-Key": INGEST_KEY}, {}),
                            ({}, {"key": INGEST_KEY}), ({"X-API-Key": ADMIN_KEY}, {}), ({}, {"key": ADMIN_KEY})):
        response = client.get("/export_data", headers=headers, params=params)
        assert response.status_code == 401, (headers, params)
        assert response.json()["error"].startswith("missing or wrong admin key")
        assert response.headers["www-authenticate"] == "Bearer"


def test_admin_key_is_accepted_as_bearer_only(client: TestClient) -> None:
    assert client.get("/export_data", headers={"Authorization": f"Bearer {ADMIN_KEY}"}).status_code == 200
    assert client.get("/export_data", headers={"Authorization": f"bearer   {ADMIN_KEY}"}).status_code == 200
    assert client.get("/export_data", headers={"Authorization": ADMIN_KEY}).status_code == 401
    assert client.get("/export_data", headers={"Authorization": f"Bearer {ADMIN_KEY}x"}).status_code == 401


# Ingest keys


def test_ingest_needs_a_key_when_keys_are_configured(keyed: tuple[TestClient, Settings]) -> None:
    client, settings = keyed
    for path, body in (("/log_event", EVENT), ("/query", QUERY)):
        for headers, params in (({}, {}), ({"X-API-Key": "wrong"}, {}), ({}, {"key": ""}), ({}, {"key": "other"})):
            response = client.post(path, json=body, headers=headers, params=params)
            assert response.status_code == 401, (path, headers, params)
            assert "ingest key" in response.json()["error"]
    assert stream_length(settings) == 0


def test_ingest_key_works_as_header_bearer_or_query_param(keyed: tuple[TestClient, Settings]) -> None:
    client, settings = keyed
    accepted = [
        client.post("/log_event", json=EVENT, headers={"X-API-Key": INGEST_KEY}),
        client.post("/log_event", json=EVENT, headers={"Authorization": f"Bearer {INGEST_KEY}"}),
        client.post("/log_event", json=EVENT, headers={"X-API-Key": "other-key"}),
        # sendBeacon: text/plain, no custom headers, so the key rides in the URL.
        client.post(f"/log_event?key={INGEST_KEY}", content=b'{"user_id":"u1","event_type":"beacon"}',
                    headers={"Content-Type": "text/plain;charset=UTF-8"}),
        client.post("/query", json=QUERY, params={"key": INGEST_KEY}),
    ]

    assert [r.status_code for r in accepted] == [202, 202, 202, 202, 200]
    drain(settings)
    assert len(stored(settings, "events")) == 4
    assert len(stored(settings, "queries")) == 1


def test_without_ingest_keys_ingest_is_open(client: TestClient) -> None:
    assert client.post("/log_event", json=EVENT).status_code == 202
    assert client.post("/log_event", json=EVENT, params={"key": "anything"}).status_code == 202


# Origins


def test_preflight_is_answered_for_allowed_origins(cors: tuple[TestClient, Settings]) -> None:
    client, _ = cors
    response = client.options("/log_event", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, x-api-key"})

    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://app.example"
    assert "POST" in response.headers["access-control-allow-methods"]


def test_foreign_origin_is_refused_even_for_simple_requests(cors: tuple[TestClient, Settings]) -> None:
    client, settings = cors
    for origin in ("https://evil.example", "null", "https://app.example.evil.example", "http://app.example"):
        simple = client.post("/log_event", content=b'{"user_id":"u","event_type":"c"}',
                             headers={"Origin": origin, "Content-Type": "text/plain"})
        preflight = client.options("/log_event", headers={"Origin": origin, "Access-Control-Request-Method": "POST"})
        for response in (simple, preflight):
            assert response.status_code == 403, origin
            assert response.json()["error"] == f"origin {origin!r} is not allowed"
            assert "access-control-allow-origin" not in response.headers
    assert stream_length(settings) == 0


def test_allowed_origin_and_no_origin_are_served(cors: tuple[TestClient, Settings]) -> None:
    client, _ = cors
    beacon = client.post("/log_event", content=b'{"user_id":"u","event_type":"c"}',
                         headers={"Origin": "https://b.example", "Content-Type": "text/plain"})
    server_to_server = client.post("/log_event", json=EVENT)

    assert beacon.status_code == 202
    assert beacon.headers["access-control-allow-origin"] == "https://b.example"
    assert "x-request-id" in beacon.headers["access-control-expose-headers"].lower()
    assert server_to_server.status_code == 202


def test_star_allows_every_origin(redis_server: Service, mongo_server: Service) -> None:
    client, _ = app_client(redis_server, mongo_server, CORS_ORIGINS="*")
    with client:
        response = client.post("/log_event", json=EVENT, headers={"Origin": "https://anywhere.example"})

    assert response.status_code == 202
    assert response.headers["access-control-allow-origin"] == "*"


def test_cors_refusals_are_json(cors: tuple[TestClient, Settings]) -> None:
    client, _ = cors
    response = client.options("/log_event", headers={"Origin": "https://app.example",
                                                     "Access-Control-Request-Method": "DELETE"})

    assert response.status_code == 400
    assert response.json() == {"error": "Disallowed CORS method"}


# Rate limits


def _start_of_a_window() -> None:
    """Fixed windows: leave at least 5 s of the current one so a test's requests share it (waits <= 5 s)."""
    left_s = WINDOW_S - time.time() % WINDOW_S
    if left_s < 5:
        time.sleep(left_s + 0.05)


def test_query_rate_limit_is_per_user(redis_server: Service, mongo_server: Service) -> None:
    client, _ = app_client(redis_server, mongo_server, QUERY_RATE_PER_MIN=2, QUERY_IP_RATE_PER_MIN=0)
    with client:
        _start_of_a_window()
        statuses = [client.post("/query", json=QUERY).status_code for _ in range(3)]
        limited = client.post("/query", json=QUERY)
        other_user = client.post("/query", json={**QUERY, "user_id": "u2"})

    assert statuses == [200, 200, 429]
    assert 0 < int(limited.headers["retry-after"]) <= WINDOW_S
    assert limited.json()["error"].startswith("too many queries: the limit is 2 per minute per user")
    assert limited.json()["retry_after_s"] == int(limited.headers["retry-after"])
    assert other_user.status_code == 200


def test_query_rate_limit_is_per_ip_across_user_ids(redis_server: Service, mongo_server: Service) -> None:
    client, _ = app_client(redis_server, mongo_server, QUERY_RATE_PER_MIN=100, QUERY_IP_RATE_PER_MIN=3)
    with client:
        _start_of_a_window()
        statuses = [client.post("/query", json={**QUERY, "user_id": f"made-up-{i}"}).status_code for i in range(4)]
        limited = client.post("/query", json={**QUERY, "user_id": "fresh"})

    assert statuses == [200, 200, 200, 429]
    assert "per IP address" in limited.json()["error"]
    assert "retry-after" in limited.headers


def test_loopback_clients_are_not_ip_limited(redis_server: Service, mongo_server: Service) -> None:
    settings = make_settings(redis_server, mongo_server, QUERY_RATE_PER_MIN=100, QUERY_IP_RATE_PER_MIN=2)
    with TestClient(create_app(settings), client=("127.0.0.1", 50000)) as client:
        _start_of_a_window()
        statuses = [client.post("/query", json={**QUERY, "user_id": f"simulated-{i}"}).status_code for i in range(4)]

    assert statuses == [200, 200, 200, 200]


def test_rate_limit_does_not_touch_log_event(redis_server: Service, mongo_server: Service) -> None:
    client, _ = app_client(redis_server, mongo_server, QUERY_RATE_PER_MIN=1, QUERY_IP_RATE_PER_MIN=1)
    with client:
        assert {client.post("/log_event", json=EVENT).status_code for _ in range(5)} == {202}


# What responses reveal


def test_unexpected_errors_reveal_nothing(settings: Settings) -> None:
    app = create_app(settings)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret connection string mongodb://user:pw@host")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")

    assert response.status_code == 500
    assert response.json() == {"error": "internal server error"}


def test_an_unexpected_error_is_logged_and_answered_with_the_request_id(
        settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(settings)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    caplog.handler.addFilter(ContextFilter())  # what configure_logging adds: the request id on each line
    with caplog.at_level(logging.ERROR), TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom", headers={"X-Request-Id": "boom-1"})

    assert (response.status_code, response.headers["x-request-id"]) == (500, "boom-1")
    [line] = [r for r in caplog.records if r.getMessage() == "unhandled error"]
    assert (line.request_id, line.path, line.exc_info[0]) == ("boom-1", "/boom", RuntimeError)


def test_request_id_is_echoed_only_when_safe(client: TestClient) -> None:
    echoed = client.post("/log_event", json=EVENT, headers={"X-Request-Id": "trace-1.2:3_4"})
    replaced = [client.post("/log_event", json=EVENT, headers={"X-Request-Id": value}).headers["x-request-id"]
                for value in ("a b", "<script>", "x" * 65, "ünï".encode("latin-1"), "a;b=c")]

    assert echoed.headers["x-request-id"] == "trace-1.2:3_4"
    assert all(len(rid) == 32 and rid.isalnum() for rid in replaced)


def test_oversized_body_is_json_413_even_when_auth_fails_first(keyed: tuple[TestClient, Settings]) -> None:
    client, settings = keyed
    too_big = b"x" * (settings.MAX_BATCH_BYTES + 1)

    response = client.post("/log_event", content=too_big, headers={"Content-Type": "application/json"})

    assert response.status_code == 413
    assert response.json() == {"error": f"request body is larger than {settings.MAX_BATCH_BYTES} bytes",
                               "limit_bytes": settings.MAX_BATCH_BYTES}


def test_chunked_body_over_the_event_limit_is_json_413(client: TestClient, settings: Settings) -> None:
    chunks = iter([b"x" * 16 * 1024] * 8)  # no Content-Length: counted while reading

    response = client.post("/log_event", content=chunks, headers={"Content-Type": "application/json"})

    assert response.status_code == 413
    assert response.json()["error"] == f"request body is larger than {settings.MAX_EVENT_BYTES} bytes"


def test_unknown_paths_and_methods_are_json(client: TestClient) -> None:
    assert client.post("/log_event/", json=EVENT).json() == {"error": "no such endpoint"}
    response = client.delete("/log_event")
    assert response.status_code == 405
    assert response.json() == {"error": "method not allowed for this endpoint"}
    assert response.headers["allow"] == "POST"
