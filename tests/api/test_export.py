from fastapi.testclient import TestClient

from api.main import create_app
from scripts.devstack import Service
from shared.settings import Settings
from tests.conftest import make_settings
from tests.helpers import drain


def test_export_requires_the_admin_key(client: TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic dGVzdA=="}):
        response = client.get("/export_data", headers=headers)
        assert response.status_code == 401
        assert "admin key" in response.json()["error"]


def test_export_refuses_when_no_admin_key_is_configured(redis_server: Service, mongo_server: Service) -> None:
    settings = make_settings(redis_server, mongo_server, ADMIN_API_KEY="")
    with TestClient(create_app(settings)) as client:
        response = client.get("/export_data", headers={"Authorization": "Bearer "})

    assert response.status_code == 403
    assert "ADMIN_API_KEY is not configured" in response.json()["error"]


def test_export_merges_both_collections_in_timestamp_order(
    client: TestClient, settings: Settings, admin_headers: dict[str, str]
) -> None:
    sent = []
    for i in range(3):
        sent.append(client.post("/log_event", json={"user_id": "u", "event_type": f"e{i}", "extra_data": {"i": i}}).json()["id"])
        sent.append(client.post("/query", json={"user_id": "u", "session_id": "s", "query": f"q{i}"}).json()["query_id"])
    drain(settings)

    response = client.get("/export_data", headers=admin_headers)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    records = response.json()
    assert [r["id"] for r in records] == sent
    assert [r["type"] for r in records] == ["event", "query"] * 3
    timestamps = [r["timestamp"] for r in records]
    assert timestamps == sorted(timestamps)
    assert all(t.endswith("Z") for t in timestamps)
    assert records[0]["extra_data"] == {"i": 0}
    assert "_id" not in records[0]


def test_export_of_empty_dataset_is_an_empty_array(client: TestClient, admin_headers: dict[str, str]) -> None:
    response = client.get("/export_data", headers=admin_headers)

    assert response.status_code == 200
    assert response.json() == []


def test_unicode_round_trips_exactly(client: TestClient, settings: Settings, admin_headers: dict[str, str]) -> None:
    texts = {"emoji": "👩🏽‍🔬🚀", "rtl": "مرحبا بالعالم", "combining": "e\u0301 n\u0303", "cjk": "日本語"}
    client.post("/log_event", json={"user_id": "ü-user", "event_type": "view", "extra_data": texts})
    drain(settings)

    [record] = client.get("/export_data", headers=admin_headers).json()

    assert record["user_id"] == "ü-user"
    assert record["extra_data"] == texts
