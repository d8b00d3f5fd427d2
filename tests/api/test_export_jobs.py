import pytest
from fastapi.testclient import TestClient
from pymongo import MongoClient

from api.main import create_app
from scripts.devstack import Service, free_port
from shared.export_jobs import JOBS
from shared.settings import Settings
from tests.conftest import make_settings


def test_job_endpoints_require_the_admin_key(client: TestClient) -> None:
    job = "0" * 32
    for method, url in (("POST", "/exports"), ("GET", f"/exports/{job}"), ("GET", f"/exports/{job}/download")):
        response = client.request(method, url, json={}, headers={"Authorization": "Bearer wrong"})
        assert response.status_code == 401, url
        assert "admin key" in response.json()["error"]


def test_a_new_job_is_queued(client: TestClient, admin_headers: dict) -> None:
    response = client.post("/exports", headers=admin_headers, json={"format": "csv", "event_type": ["click"]})

    assert response.status_code == 202
    job_id = response.json()["job_id"]
    assert response.json() == {"job_id": job_id, "state": "queued", "status_url": f"/exports/{job_id}"}
    assert response.headers["location"] == f"/exports/{job_id}"
    view = client.get(f"/exports/{job_id}", headers=admin_headers).json()
    assert view["state"] == "queued"
    assert view["params"] == {"since": None, "until": None, "user_id": None, "session_id": None,
                              "query_id": None, "type": None, "event_type": ["click"], "format": "csv",
                              "flatten": False}
    assert (view["records_written"], view["errors"], view["attempts"], view["finished_at"]) == (0, [], 0, None)
    assert view["created_at"].endswith("Z")
    download = client.get(f"/exports/{job_id}/download", headers=admin_headers)
    assert download.status_code == 409
    assert download.json()["state"] == "queued"


@pytest.mark.parametrize("body", [
    {"user_id": {"$ne": 1}},
    {"user_id": ["a"]},
    {"event_type": {"$in": ["click"]}},
    {"since": {"$gt": "2020-01-01"}},
    {"$where": "1"},
    {"format": "xlsx"},
    {"format": "json", "flatten": True},
    {"limit": 10},
])
def test_job_parameters_are_validated_like_the_export(client: TestClient, admin_headers: dict,
                                                      settings: Settings, body: dict) -> None:
    response = client.post("/exports", headers=admin_headers, json=body)

    assert response.status_code == 422
    fields = response.json()["fields"]
    assert fields and response.json()["error"].startswith(f"{fields[0]['field']}: ")
    with MongoClient(settings.MONGODB_URI) as mongo:
        assert mongo[settings.MONGO_DB][JOBS].count_documents({}) == 0


@pytest.mark.parametrize(("job_id", "status"), [("0" * 32, 404), ("not-a-job", 422), ("A" * 32, 422)])
def test_unknown_or_malformed_job_ids(client: TestClient, admin_headers: dict, job_id: str, status: int) -> None:
    for url in (f"/exports/{job_id}", f"/exports/{job_id}/download"):
        response = client.get(url, headers=admin_headers)
        assert response.status_code == status
        assert "error" in response.json()


def test_no_job_is_left_behind_when_redis_cannot_queue_it(redis_server: Service, mongo_server: Service,
                                                           admin_headers: dict) -> None:
    settings = make_settings(redis_server, mongo_server, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    with TestClient(create_app(settings)) as client:
        response = client.post("/exports", headers=admin_headers, json={})

    assert response.status_code == 503
    assert "Redis is unavailable" in response.json()["error"]
    with MongoClient(settings.MONGODB_URI) as mongo:
        assert mongo[settings.MONGO_DB][JOBS].count_documents({}) == 0
