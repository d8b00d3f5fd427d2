"""`POST /log_events`: one Redis round trip per batch, 202 or 207, each valid event stored exactly once."""

import gzip
import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from scripts.devstack import Service
from shared.records import event_record_id
from shared.settings import Settings
from tests.conftest import make_settings
from tests.helpers import drain, stored, stream_length


def event(i: int, **fields: object) -> dict[str, object]:
    return {"user_id": f"user-{i}", "session_id": "s-1", "event_type": "scroll", "extra_data": {"y": i}, **fields}


@pytest.fixture
def small_settings(redis_server: Service, mongo_server: Service) -> Settings:
    return make_settings(redis_server, mongo_server, MAX_BATCH_EVENTS=5, MAX_BATCH_BYTES=4096,
                         MAX_EVENT_BYTES=1024, INGEST_API_KEYS="k1,k2")


@pytest.fixture
def small_client(small_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(small_settings)) as test_client:
        yield test_client


def test_valid_batch_is_202_with_ids_in_order_and_stored_once(client: TestClient, settings: Settings) -> None:
    events = [event(i) for i in range(100)]

    response = client.post("/log_events", json={"events": events})

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued" and len(body["ids"]) == 100 == len(set(body["ids"]))
    assert stream_length(settings) == 1  # the batch's records share one stream entry
    assert drain(settings) == 100
    documents = {d["_id"]: d for d in stored(settings, "events")}
    assert set(documents) == set(body["ids"])
    assert [documents[i]["extra_data"]["y"] for i in body["ids"]] == list(range(100))


def test_partly_invalid_batch_is_207_and_stores_only_the_valid_events(client: TestClient, settings: Settings) -> None:
    events = [
        event(0),
        "not an object",
        {"event_type": "click"},
        event(3, extra_data={"big": 2**64}),
        event(4, event_id="e-4"),
        event(5, user_id=7),
        event(6, extra_data={"blob": "x" * settings.MAX_EVENT_BYTES}),
    ]

    response = client.post("/log_events", json={"events": events})

    assert response.status_code == 207
    body = response.json()
    results = body["results"]
    assert (body["status"], body["accepted"], body["rejected"]) == ("queued", 2, 5)
    assert [r["index"] for r in results] == list(range(7))
    assert set(results[0]) == {"index", "id"}
    assert results[1] == {"index": 1, "error": "event must be a JSON object"}
    assert results[2] == {"index": 2, "error": "user_id: Field required",
                          "fields": [{"field": "user_id", "message": "Field required"}]}
    assert results[3] == {"index": 3, "error": "extra_data.big: integer is outside the 64-bit range MongoDB can store", "fields": [
        {"field": "extra_data.big", "message": "integer is outside the 64-bit range MongoDB can store"}]}
    assert results[4] == {"index": 4, "id": event_record_id("user-4", "e-4")}
    assert results[5]["error"].startswith("user_id: ") and results[5]["fields"][0]["field"] == "user_id"
    assert results[6] == {"index": 6, "error": f"event is larger than {settings.MAX_EVENT_BYTES} bytes"}
    assert drain(settings) == 2
    assert sorted(d["_id"] for d in stored(settings, "events")) == sorted([results[0]["id"], results[4]["id"]])


def test_resent_batch_with_event_ids_is_not_doubled(client: TestClient, settings: Settings) -> None:
    batch = {"events": [event(i, event_id=f"e-{i}") for i in range(10)] + [{"user_id": "bad"}]}

    first = client.post("/log_events", json=batch).json()
    second = client.post("/log_events", json=batch).json()

    assert first == second
    assert drain(settings) == 20
    assert sorted(d["_id"] for d in stored(settings, "events")) == sorted(event_record_id(f"user-{i}", f"e-{i}")
                                                                          for i in range(10))


def test_batch_without_a_valid_event_is_422_and_queues_nothing(client: TestClient, settings: Settings) -> None:
    response = client.post("/log_events", json={"events": [{"user_id": "u"}, []]})

    assert response.status_code == 422
    assert response.json() == {
        "error": "no event in the batch is valid; nothing was queued",
        "results": [
            {"index": 0, "error": "event_type: Field required",
             "fields": [{"field": "event_type", "message": "Field required"}]},
            {"index": 1, "error": "event must be a JSON object"},
        ],
    }
    assert stream_length(settings) == 0


def test_batch_level_problems_are_one_clear_error(small_client: TestClient, small_settings: Settings) -> None:
    key = {"key": "k1"}
    cases = [
        ([1, 2], 422, "request body must be a JSON object with an `events` list"),
        ({"event": [event(0)]}, 422, "events: Field required"),
        ({"events": {"0": event(0)}}, 422, "events: "),
        ({"events": []}, 422, "`events` is empty; send 1 to 5 events"),
        ({"events": [event(i) for i in range(6)]}, 422, "events: the batch has 6 events; the limit is 5"),
        ({"events": [event(0)], "sent_at": {"t": 1}}, 422, "sent_at: "),
        ({"events": [event(0)], "sent_at": "\ud800"}, 422, "sent_at: "),
    ]
    for body, status, message in cases:
        response = small_client.post("/log_events", params=key, content=json.dumps(body),
                                     headers={"Content-Type": "application/json"})
        assert response.status_code == status and response.json()["error"].startswith(message), (body, response.text)
    too_big = small_client.post("/log_events", params=key, json={"events": [event(0, pad="x" * 5000)]})
    assert too_big.status_code == 413
    assert stream_length(small_settings) == 0


def test_beacon_shapes_text_plain_gzip_and_key_in_query(small_client: TestClient, small_settings: Settings) -> None:
    batch = json.dumps({"events": [event(i) for i in range(5)]}).encode()
    beacon = {"Content-Type": "text/plain;charset=UTF-8"}

    no_key = small_client.post("/log_events", content=batch, headers=beacon)
    plain = small_client.post("/log_events", params={"key": "k2"}, content=batch, headers=beacon)
    zipped = small_client.post("/log_events", params={"key": "k1"}, content=gzip.compress(batch),
                               headers={**beacon, "Content-Encoding": "gzip"})

    assert no_key.status_code == 401
    assert (plain.status_code, zipped.status_code) == (202, 202)
    assert drain(small_settings) == 10


def test_gzip_bomb_is_refused(small_client: TestClient, small_settings: Settings) -> None:
    bomb = gzip.compress(json.dumps({"events": [event(0, pad=" " * 100_000)]}).encode())

    response = small_client.post("/log_events", params={"key": "k1"}, content=bomb,
                                 headers={"Content-Type": "text/plain", "Content-Encoding": "gzip"})

    assert response.status_code == 413
    assert "decompressed body is larger than" in response.json()["error"]
    assert stream_length(small_settings) == 0


def test_gzip_bodies_of_several_members_are_read_whole_and_trailing_junk_is_refused(
        small_client: TestClient, small_settings: Settings) -> None:
    text = json.dumps({"events": [event(i) for i in range(4)]}).encode()
    headers = {"Content-Type": "text/plain", "Content-Encoding": "gzip"}
    members = gzip.compress(text[:40]) + gzip.compress(text[40:])  # valid gzip, as `cat a.gz b.gz` makes
    bomb_in_parts = gzip.compress(b" " * 3000) * 40  # each member small, their sum past the batch limit

    whole = small_client.post("/log_events", params={"key": "k1"}, content=members, headers=headers)
    junk = small_client.post("/log_events", params={"key": "k1"}, content=gzip.compress(text) + b"junk", headers=headers)
    summed = small_client.post("/log_events", params={"key": "k1"}, content=bomb_in_parts, headers=headers)

    assert whole.status_code == 202 and len(whole.json()["ids"]) == 4
    assert (junk.status_code, junk.json()["error"]) == (400, "request body has data after the end of its gzip stream")
    assert summed.status_code == 413
    assert drain(small_settings) == 4


def test_gzip_members_are_capped_and_a_stray_byte_after_the_stream_is_named(
        small_client: TestClient, small_settings: Settings) -> None:
    text = json.dumps({"events": [event(0)]}).encode()
    headers = {"Content-Type": "text/plain", "Content-Encoding": "gzip"}
    # Empty members, each of which makes zlib copy the rest of the body: 50,000 of them fit in the
    # default 1 MiB and cost quadratic CPU; 100 fit in this client's 4 KiB.
    many = small_client.post("/log_events", params={"key": "k1"}, content=gzip.compress(b"") * 100 + gzip.compress(text),
                             headers=headers)
    newline = small_client.post("/log_events", params={"key": "k1"}, content=gzip.compress(text) + b"\n", headers=headers)
    truncated = small_client.post("/log_events", params={"key": "k1"}, content=gzip.compress(text)[:-6], headers=headers)

    assert (many.status_code, many.json()["error"]) == (400, "request body has more than 32 gzip members")
    assert (newline.status_code, newline.json()["error"]) == (400, "request body has data after the end of its gzip stream")
    assert (truncated.status_code, truncated.json()["error"]) == (400, "gzip body is truncated")
    assert stream_length(small_settings) == 0


def test_batch_sent_at_corrects_each_event_time(client: TestClient, settings: Settings) -> None:
    # A client clock running 2 days slow: only the gaps before sending matter.
    sent_at = "2020-01-01T00:00:10.000Z"
    events = [event(0, client_timestamp="2020-01-01T00:00:07.500Z"),
              event(1, client_timestamp=1577836805000),  # 2020-01-01T00:00:05Z in epoch ms
              event(2),
              event(3, client_timestamp="not a time")]

    ids = client.post("/log_events", json={"events": events, "sent_at": sent_at}).json()["ids"]

    drain(settings)
    documents = {d["_id"]: d for d in stored(settings, "events")}
    got = [documents[i] for i in ids]
    assert [d["timestamp"] - d["event_time"] for d in got] == [
        timedelta(seconds=2.5), timedelta(seconds=5), timedelta(0), timedelta(0)]
    assert [d.get("client_timestamp") for d in got] == [
        "2020-01-01T00:00:07.500Z", 1577836805000, None, "not a time"]
    assert {d["sent_at"] for d in got} == {sent_at}


def test_single_event_may_carry_sent_at(client: TestClient, settings: Settings) -> None:
    response = client.post("/log_event", json=event(0, client_timestamp=1000, sent_at=1750))

    assert response.status_code == 202
    drain(settings)
    [document] = stored(settings, "events")
    assert document["timestamp"] - document["event_time"] == timedelta(milliseconds=750)
    assert (document["client_timestamp"], document["sent_at"]) == (1000, 1750)


def test_single_event_without_sent_at_gets_receipt_time(client: TestClient, settings: Settings) -> None:
    client.post("/log_event", json=event(0, client_timestamp="2020-01-01T00:00:00Z"))

    drain(settings)
    [document] = stored(settings, "events")
    assert document["event_time"] == document["timestamp"]


def test_fields_the_server_sets_cannot_be_sent(client: TestClient, settings: Settings) -> None:
    single = client.post("/log_event", json=event(0, timestamp="2020-01-01T00:00:00Z", id="mine"))
    batch = client.post("/log_events", json={"events": [event(0), event(1, event_time=5)]})

    assert single.status_code == 422
    assert single.json() == {"error": "id: id is set by the server and cannot be sent", "fields": [
        {"field": "id", "message": "id is set by the server and cannot be sent"}]}
    assert batch.status_code == 207
    assert batch.json()["results"][1]["fields"] == [
        {"field": "event_time", "message": "event_time is set by the server and cannot be sent"}]


def test_an_events_own_sent_at_wins_over_the_batchs(client: TestClient, settings: Settings) -> None:
    events = [event(0, client_timestamp=1000, sent_at=1100), event(1, client_timestamp=1000)]

    ids = client.post("/log_events", json={"events": events, "sent_at": 4000}).json()["ids"]

    drain(settings)
    documents = {d["_id"]: d for d in stored(settings, "events")}
    assert [documents[i]["timestamp"] - documents[i]["event_time"] for i in ids] == [
        timedelta(milliseconds=100), timedelta(milliseconds=3000)]
    assert [documents[i]["sent_at"] for i in ids] == [1100, 4000]


def test_openapi_documents_the_batch_body_and_the_207(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/log_events"]["post"]

    schema = operation["requestBody"]["content"]["text/plain"]["schema"]
    assert schema["required"] == ["events"]
    assert "user_id" in schema["properties"]["events"]["items"]["properties"]
    assert set(operation["responses"]) >= {"202", "207", "413", "422"}
