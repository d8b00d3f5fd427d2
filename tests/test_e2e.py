"""The whole system as users run it: uvicorn API and worker processes, real Redis, real wire-protocol MongoDB."""

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from scripts.devstack import free_port, redis_service, secantus_service, wait_mongo_ready, wait_redis_ready
from tests.processes import api_service, app_env, export_ids, wait_ready, wait_until, worker_service

ADMIN = {"Authorization": "Bearer e2e-admin"}
SEED_EVENT = {
    "user_id": "user_123", "session_id": "session_abc", "event_type": "click", "query": "best boots",
    "target_url": "https://example.com/boots", "page_url": "https://app.example.com/chat",
    "extra_data": {"position": 1},
}


class System:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.redis = redis_service(free_port(), root / "redis")
        self.mongo = secantus_service(free_port(), root / "mongo")
        self.env = app_env(f"redis://127.0.0.1:{self.redis.port}/0",
                           f"mongodb://127.0.0.1:{self.mongo.port}/?directConnection=true")
        self.worker = worker_service(self.env, root / "logs", "worker-1")
        self.api = api_service(self.env, root / "logs")
        self.url = f"http://127.0.0.1:{self.api.port}"

    def start(self) -> "System":
        self.redis.start()
        wait_redis_ready(self.env["REDIS_URL"])
        self.mongo.start()
        wait_mongo_ready(self.env["MONGODB_URI"])
        self.worker.start()
        self.api.start(ready_timeout_s=120)
        wait_ready(self.url)
        return self

    def stop(self) -> None:
        for service in (self.api, self.worker, self.mongo, self.redis):
            service.stop()

    def stored_ids(self, kind: str | None = None) -> list[str]:
        return export_ids(self.url, "e2e-admin", kind)


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    running = System(tmp_path_factory.mktemp("e2e")).start()
    yield running
    running.stop()


def test_seed_examples_round_trip_within_two_seconds(system: System) -> None:
    assert httpx.get(f"{system.url}/status").json()["status"] == "running"
    query = httpx.post(f"{system.url}/query", json={"user_id": "user_123", "session_id": "session_abc",
                                                    "query": "best hiking boots?"}, timeout=30)
    as_json = httpx.post(f"{system.url}/log_event", json=SEED_EVENT)
    as_beacon = httpx.post(f"{system.url}/log_event", content=json.dumps({**SEED_EVENT, "event_type": "beacon"}),
                           headers={"Content-Type": "text/plain;charset=UTF-8"})
    sent_at = time.monotonic()
    assert (query.status_code, as_json.status_code, as_beacon.status_code) == (200, 202, 202)
    wanted = {query.json()["query_id"], as_json.json()["id"], as_beacon.json()["id"]}

    assert wait_until(lambda: wanted <= set(system.stored_ids()), timeout_s=2)
    assert time.monotonic() - sent_at < 2

    records = {r["id"]: r for r in httpx.get(f"{system.url}/export_data", headers=ADMIN).json()}
    event = records[as_json.json()["id"]]
    assert event["type"] == "event" and event["timestamp"].endswith("Z")
    assert {k: event[k] for k in SEED_EVENT} == SEED_EVENT
    assert records[query.json()["query_id"]]["type"] == "query"
    assert records[as_beacon.json()["id"]]["event_type"] == "beacon"


def test_fifty_concurrent_users_forty_events_each_are_stored_exactly_once(system: System) -> None:
    async def send(client: httpx.AsyncClient, event: dict) -> httpx.Response:
        # Like a real front end: a dropped keep-alive connection is retried with the same event_id,
        # which the server turns into the same record id, so a retry can never double an event.
        for attempt in range(3):
            try:
                return await client.post("/log_event", json=event)
            except httpx.TransportError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def user(client: httpx.AsyncClient, n: int) -> list[str]:
        ids = []
        for i in range(40):
            response = await send(client, {"user_id": f"load-{n}", "event_type": "scroll",
                                           "event_id": f"load-{n}-{i}", "extra_data": {"i": i}})
            assert response.status_code == 202
            ids.append(response.json()["id"])
        return ids

    async def run() -> set[str]:
        async with httpx.AsyncClient(base_url=system.url, timeout=30,
                                     limits=httpx.Limits(max_connections=50)) as client:
            return {i for ids in await asyncio.gather(*(user(client, n) for n in range(50))) for i in ids}

    accepted = asyncio.run(run())

    assert len(accepted) == 2000
    assert wait_until(lambda: accepted <= set(system.stored_ids()), timeout_s=30)
    stored = [i for i in system.stored_ids("event") if i in accepted]
    assert len(stored) == 2000 and set(stored) == accepted


def test_events_sent_while_the_worker_is_stopped_are_stored_when_it_returns(system: System) -> None:
    system.worker.stop()
    with httpx.Client(base_url=system.url) as client:
        accepted = {client.post("/log_event", json={"user_id": "offline", "event_type": "click",
                                                     "extra_data": {"i": i}}).json()["id"] for i in range(500)}
    assert len(accepted) == 500
    assert not accepted & set(system.stored_ids())

    system.worker.start()

    assert wait_until(lambda: accepted <= set(system.stored_ids()), timeout_s=30)
    assert len([i for i in system.stored_ids() if i in accepted]) == 500


def test_mongodb_down_ingest_still_202_and_events_arrive_when_it_returns(system: System) -> None:
    system.mongo.stop()
    with httpx.Client(base_url=system.url) as client:
        responses = [client.post("/log_event", json={"user_id": "mongo-down", "event_type": "click"})
                     for _ in range(100)]
    assert [r.status_code for r in responses] == [202] * 100
    accepted = {r.json()["id"] for r in responses}

    system.mongo.start()
    wait_mongo_ready(system.env["MONGODB_URI"])

    assert wait_until(lambda: accepted <= set(system.stored_ids()), timeout_s=60, interval_s=0.5)
    assert len([i for i in system.stored_ids() if i in accepted]) == 100
