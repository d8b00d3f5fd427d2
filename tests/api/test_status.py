from fastapi.testclient import TestClient

from api.main import create_app
from scripts.devstack import Service
from tests.conftest import make_settings


def test_status_reports_running_and_dependencies(client: TestClient) -> None:
    client.post("/log_event", json={"user_id": "u", "event_type": "click"})

    body = client.get("/status").json()

    assert body["status"] == "running"
    assert body["redis"] is True
    assert body["mongodb"] is True
    assert body["queue_depth"] == 1
    assert body["llm_mock"] is True


def test_status_stays_200_when_stores_are_unreachable(redis_server: Service, mongo_server: Service) -> None:
    settings = make_settings(redis_server, mongo_server, REDIS_URL="redis://127.0.0.1:1/0",
                             MONGODB_URI="mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200")
    with TestClient(create_app(settings)) as client:
        response = client.get("/status")

    assert response.status_code == 200
    assert response.json() | {"queue_depth": None} == response.json()
    assert (response.json()["redis"], response.json()["mongodb"]) == (False, False)


def test_status_answers_head_for_uptime_monitors(client: TestClient) -> None:
    response = client.head("/status")

    assert response.status_code == 200
    assert response.content == b""
    assert "head" not in client.get("/openapi.json").json()["paths"]["/status"]
