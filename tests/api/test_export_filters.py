import base64

import pytest
from fastapi.testclient import TestClient

from shared.settings import Settings
from tests.export_helpers import event, ids, insert, query


@pytest.fixture
def stored(settings: Settings) -> None:
    insert(settings,
           event("e1", 0, user_id="alice", session_id="s1", event_type="click"),
           query("q1", 1000, user_id="alice", session_id="s1"),
           event("e2", 2000, user_id="alice", session_id="s1", event_type="scroll", query_id="q1"),
           event("e3", 3000, user_id="bob", session_id="s2", event_type="click", query_id="q2"),
           query("q2", 4000, user_id="bob", session_id="s2"),
           event("e4", 5000, user_id="bob", session_id="s3", event_type="hover"))


def exported(client: TestClient, headers: dict[str, str], params: dict | list) -> list[str]:
    response = client.get("/export_data", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return ids(response.json())


@pytest.mark.parametrize(("params", "expected"), [
    ({}, ["e1", "q1", "e2", "e3", "q2", "e4"]),
    ({"since": "2025-03-01T12:00:02Z"}, ["e2", "e3", "q2", "e4"]),
    ({"until": "2025-03-01T12:00:02Z"}, ["e1", "q1"]),
    ({"since": "2025-03-01T12:00:01Z", "until": "2025-03-01T12:00:04Z"}, ["q1", "e2", "e3"]),
    ({"since": "2025-03-01T14:00:01+02:00"}, ["q1", "e2", "e3", "q2", "e4"]),  # offsets are honoured
    ({"since": "2025-03-01T12:00:00.999001Z"}, ["q1", "e2", "e3", "q2", "e4"]),  # sub-ms rounds up
    ({"user_id": "alice"}, ["e1", "q1", "e2"]),
    ({"session_id": "s2"}, ["e3", "q2"]),
    ({"query_id": "q1"}, ["q1", "e2"]),
    ({"type": "query"}, ["q1", "q2"]),
    ({"type": "event"}, ["e1", "e2", "e3", "e4"]),
    ({"event_type": "click"}, ["e1", "e3"]),
    ([("event_type", "click"), ("event_type", "hover")], ["e1", "e3", "e4"]),
    ({"user_id": "bob", "type": "event", "since": "2025-03-01T12:00:04Z"}, ["e4"]),
    ({"user_id": "nobody"}, []),
])
def test_filters(client: TestClient, admin_headers: dict, stored: None, params: dict | list, expected: list) -> None:
    assert exported(client, admin_headers, params) == expected


@pytest.mark.parametrize("fmt", ["ndjson", "csv"])
def test_filters_apply_to_every_format(client: TestClient, admin_headers: dict, stored: None, fmt: str) -> None:
    response = client.get("/export_data", headers=admin_headers, params={"format": fmt, "user_id": "bob"})

    assert response.status_code == 200
    assert response.text.count("\n") == 3 + (fmt == "csv")


@pytest.mark.parametrize("params", [
    {"user_id": '{"$ne": 1}'},
    {"user_id": '{"$gt": ""}'},
    {"session_id": "$where"},
    {"event_type": '{"$in": ["click"]}'},
    {"query_id": '{"$exists": true}'},
])
def test_operator_looking_values_are_plain_strings(client: TestClient, admin_headers: dict, stored: None,
                                                    params: dict) -> None:
    assert exported(client, admin_headers, params) == []


@pytest.mark.parametrize("query_string", [
    "user_id[$ne]=x", "user_id[$gt]=", "session_id[$regex]=.*", "event_type[$in]=click",
    "since[$gt]=2020-01-01", "$where=1", "user=alice",
])
def test_operator_shaped_parameter_names_are_refused(client: TestClient, admin_headers: dict, stored: None,
                                                      query_string: str) -> None:
    response = client.get(f"/export_data?{query_string}", headers=admin_headers)

    assert response.status_code == 422
    body = response.json()
    assert body["fields"][0]["message"] == "Extra inputs are not permitted"
    assert body["error"] == f"{body['fields'][0]['field']}: Extra inputs are not permitted"


@pytest.mark.parametrize(("params", "field"), [
    ({"format": "xml"}, "query.format"),
    ({"since": "yesterday"}, "query.since"),
    ({"until": "2025-13-01"}, "query.until"),
    ({"since": "2025-03-02", "until": "2025-03-01"}, "query"),
    ({"type": "click"}, "query.type"),
    ({"type": "query", "event_type": "click"}, "query"),
    ({"flatten": "true"}, "query"),
    ({"flatten": "maybe", "format": "csv"}, "query.flatten"),
    ({"user_id": ""}, "query.user_id"),
    ({"user_id": "x" * 257}, "query.user_id"),
    ({"limit": "0"}, "query.limit"),
    ({"limit": "ten"}, "query.limit"),
    ({"settle_s": "-1"}, "query.settle_s"),
    ({"cursor": "not-a-cursor"}, "query.cursor"),
    ({"cursor": "W10"}, "query.cursor"),
    ({"cursor": base64.urlsafe_b64encode(b'[1,100000000000000000000,"x","event"]').decode()}, "query.cursor"),
    ({"cursor": base64.urlsafe_b64encode(b'[1,0,"x","click"]').decode()}, "query.cursor"),
    ({"since": "9999-12-31T23:59:59.999999Z"}, "query.since"),
    ([("event_type", f"t{i}") for i in range(51)], "query.event_type"),
])
def test_invalid_parameters_get_a_422_naming_the_field(client: TestClient, admin_headers: dict,
                                                        params: dict | list, field: str) -> None:
    response = client.get("/export_data", headers=admin_headers, params=params)

    assert response.status_code == 422
    body = response.json()
    assert [f["field"] for f in body["fields"]] == [field]
    assert body["error"].startswith(f"{field}: ")
