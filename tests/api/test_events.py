import asyncio
import json

import pytest
from fastapi.testclient import TestClient
from pymongo import MongoClient
from starlette.requests import ClientDisconnect

from api.body import read_capped
from api.errors import ApiError
from api.main import create_app
from scripts.devstack import Service
from shared.records import event_record_id
from shared.settings import Settings
from tests.conftest import make_settings
from tests.helpers import drain, stored, stream_length

SEED_EVENT = {
    "user_id": "user_123",
    "session_id": "session_abc",
    "event_type": "click",
    "query": "best hiking boots",
    "target_url": "https://example.com/boots",
    "page_url": "https://app.example.com/chat",
    "extra_data": {"position": 2, "nested": {"list": [1, 2.5, None, True]}},
}


def test_log_event_queues_then_worker_stores_every_field(client: TestClient, settings: Settings) -> None:
    response = client.post("/log_event", json={**SEED_EVENT, "experiment_arm": "B"})

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued"
    assert stream_length(settings) == 1
    assert drain(settings) == 1
    [document] = stored(settings, "events")
    assert document["_id"] == body["id"]
    for key, value in {**SEED_EVENT, "experiment_arm": "B"}.items():
        assert document[key] == value
    assert document["timestamp"].tzinfo is None  # BSON date, read back naive UTC
    assert stream_length(settings) == 0  # acked entries are deleted


def test_text_plain_beacon_is_accepted(client: TestClient, settings: Settings) -> None:
    response = client.post(
        "/log_event", content=json.dumps(SEED_EVENT), headers={"Content-Type": "text/plain;charset=UTF-8"}
    )

    assert response.status_code == 202
    drain(settings)
    assert [d["_id"] for d in stored(settings, "events")] == [response.json()["id"]]


def test_retried_event_id_is_stored_once(client: TestClient, settings: Settings) -> None:
    event = {**SEED_EVENT, "event_id": "evt-1"}
    ids = {client.post("/log_event", json=event).json()["id"] for _ in range(3)}

    assert ids == {event_record_id("user_123", "evt-1")}
    drain(settings)
    assert len(stored(settings, "events")) == 1


def test_same_event_id_for_another_user_is_another_record(client: TestClient, settings: Settings) -> None:
    first = client.post("/log_event", json={**SEED_EVENT, "event_id": "e"}).json()["id"]
    second = client.post("/log_event", json={**SEED_EVENT, "user_id": "other", "event_id": "e"}).json()["id"]

    assert first != second
    drain(settings)
    assert len(stored(settings, "events")) == 2


def test_any_event_type_is_accepted(client: TestClient) -> None:
    for event_type in ("scroll", "hover", "conversion", "custom:thing/1", "ünïcode"):
        assert client.post("/log_event", json={**SEED_EVENT, "event_type": event_type}).status_code == 202


def test_bad_requests_get_clear_json_errors(client: TestClient, settings: Settings) -> None:
    cases = [
        (b"", "application/json", 400, "empty"),
        (b"not json", "application/json", 400, "not valid JSON"),
        (b"[1, 2]", "application/json", 422, "JSON object"),
        (json.dumps({**SEED_EVENT, "user_id": 5}).encode(), "application/json", 422, "user_id: Input should be"),
        (json.dumps({**SEED_EVENT, "user_id": ""}).encode(), "application/json", 422, "user_id: String should"),
        (json.dumps(SEED_EVENT).encode(), "application/x-www-form-urlencoded", 415, "Content-Type"),
        (b'{"user_id": "u", "event_type": "x", "extra_data": {"v": NaN}}', "application/json", 422, "extra_data.v: NaN"),
    ]
    for body, content_type, status, fragment in cases:
        response = client.post("/log_event", content=body, headers={"Content-Type": content_type})
        assert response.status_code == status, (body, response.text)
        assert fragment in response.json()["error"], response.text
    assert stream_length(settings) == 0


def test_validation_error_names_the_field(client: TestClient) -> None:
    response = client.post("/log_event", json={**SEED_EVENT, "user_id": 5})

    assert response.status_code == 422
    assert response.json()["fields"][0]["field"] == "user_id"


def test_unstorable_value_names_its_path(client: TestClient) -> None:
    response = client.post("/log_event", json={**SEED_EVENT, "extra_data": {"big": 2**64}})

    assert response.status_code == 422
    assert response.json()["fields"] == [
        {"field": "extra_data.big", "message": "integer is outside the 64-bit range MongoDB can store"}
    ]


def test_oversized_event_is_413_json(client: TestClient, settings: Settings) -> None:
    payload = {**SEED_EVENT, "extra_data": {"blob": "x" * settings.MAX_EVENT_BYTES}}

    response = client.post("/log_event", json=payload)

    assert response.status_code == 413
    assert "larger than" in response.json()["error"]


def test_unknown_path_is_json_404(client: TestClient) -> None:
    response = client.get("/nope")

    assert response.status_code == 404
    assert response.json() == {"error": "no such endpoint"}



class _HungUpRequest:
    """A request whose client disconnects after part of the body (what Starlette reports)."""

    headers: dict[str, str] = {}

    async def stream(self):
        yield b'{"user_id": "u", '
        raise ClientDisconnect


def test_client_hanging_up_mid_body_is_a_400_not_a_500() -> None:
    with pytest.raises(ApiError) as raised:
        asyncio.run(read_capped(_HungUpRequest(), 1024))

    assert raised.value.status == 400
    assert raised.value.message == "the client disconnected before sending the whole body"


def test_redis_down_a_record_mongodb_refuses_is_a_generic_422_and_the_reason_is_logged(
    redis_server: Service, mongo_server: Service, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(redis_server, mongo_server, REDIS_URL="redis://127.0.0.1:1/0")
    with MongoClient(settings.MONGODB_URI) as mongo:  # a validator stands in for any refusal MongoDB may have
        mongo[settings.MONGO_DB].create_collection(
            "events", validator={"$jsonSchema": {"properties": {"event_type": {"enum": ["click"]}}}})

    with TestClient(create_app(settings)) as client:
        accepted = client.post("/log_event", json=SEED_EVENT)
        refused = client.post("/log_event", json={**SEED_EVENT, "event_type": "scroll"})

    assert (accepted.status_code, accepted.json()["status"]) == (202, "stored")
    assert (refused.status_code, refused.json()) == (422, {"error": "the database refused the record; it was not stored"})
    [log] = [r for r in caplog.records if r.getMessage().startswith("mongodb refused a record")]
    assert "Document failed validation" in log.error and log.code == 121
