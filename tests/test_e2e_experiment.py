"""An experiment as the issue checks it: two uvicorn API processes, a worker, real Redis and MongoDB,
three weighted arms and thousands of simulated participants."""

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from scripts.devstack import free_port, redis_service, secantus_service, wait_mongo_ready, wait_redis_ready
from tests.experiment_helpers import THREE_ARMS, chi_square, participants, write_experiment
from tests.processes import api_service, app_env, wait_ready, wait_until, worker_service

ADMIN = {"Authorization": "Bearer e2e-admin"}
WEIGHTS = {arm["name"]: arm["weight"] for arm in THREE_ARMS}


class ExperimentSystem:
    def __init__(self, root: Path) -> None:
        self.redis = redis_service(free_port(), root / "redis")
        self.mongo = secantus_service(free_port(), root / "mongo")
        experiment_file = write_experiment(root, "e2e-exp", THREE_ARMS)
        self.env = app_env(f"redis://127.0.0.1:{self.redis.port}/0",
                           f"mongodb://127.0.0.1:{self.mongo.port}/?directConnection=true",
                           EXPERIMENT_FILE=str(experiment_file), QUERY_RATE_PER_MIN="0", QUERY_IP_RATE_PER_MIN="0")
        self.worker = worker_service(self.env, root / "logs", "worker-1")
        self.apis = [api_service(self.env, root / "logs"), api_service(self.env, root / "logs")]
        self.urls = [f"http://127.0.0.1:{api.port}" for api in self.apis]

    def start(self) -> "ExperimentSystem":
        self.redis.start()
        wait_redis_ready(self.env["REDIS_URL"])
        self.mongo.start()
        wait_mongo_ready(self.env["MONGODB_URI"])
        self.worker.start()
        for api, url in zip(self.apis, self.urls, strict=True):
            api.start(ready_timeout_s=120)
            wait_ready(url)
        return self

    def stop(self) -> None:
        for service in (*self.apis, self.worker, self.mongo, self.redis):
            service.stop()

    def export(self) -> list[dict]:
        response = httpx.get(f"{self.urls[0]}/export_data", headers=ADMIN, timeout=60)
        response.raise_for_status()
        return response.json()


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExperimentSystem]:
    running = ExperimentSystem(tmp_path_factory.mktemp("e2e-experiment")).start()
    yield running
    running.stop()


async def _send_events(urls: list[str], users: list[str]) -> set[str]:
    """One event per participant, in batches of 500 alternating between the two API processes."""
    ids: set[str] = set()
    async with httpx.AsyncClient(timeout=30) as client:
        for start in range(0, len(users), 500):
            batch = [{"user_id": user, "event_type": "page_view"} for user in users[start:start + 500]]
            response = await client.post(f"{urls[(start // 500) % 2]}/log_events", json={"events": batch})
            assert response.status_code == 202, response.text
            ids.update(response.json()["ids"])
    return ids


async def _query_on_both(urls: list[str], users: list[str]) -> dict[str, list[str]]:
    """Each participant asks once on each API process; returns the arms the answers carried."""
    async def ask(client: httpx.AsyncClient, user: str) -> list[str]:
        arms = []
        for url in urls:
            response = await client.post(f"{url}/query", json={"user_id": user, "query": "Which boots?"})
            assert response.status_code == 200, response.text
            arms.append(response.json()["arm"])
        return arms

    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=20)) as client:
        semaphore = asyncio.Semaphore(20)

        async def bounded(user: str) -> list[str]:
            async with semaphore:
                return await ask(client, user)

        return dict(zip(users, await asyncio.gather(*(bounded(u) for u in users)), strict=True))


def test_thousands_of_participants_follow_the_weights_and_keep_their_arm(system: ExperimentSystem) -> None:
    users = participants(3000, "e2e")
    event_ids = asyncio.run(_send_events(system.urls, users))
    answered = asyncio.run(_query_on_both(system.urls, users[:200]))

    assert wait_until(lambda: len(system.export()) >= 3000 + 400, timeout_s=60, interval_s=0.5)
    records = system.export()
    events = {r["user_id"]: r for r in records if r["type"] == "event" and r["id"] in event_ids}
    queries = [r for r in records if r["type"] == "query" and r["user_id"] in answered]
    assert len(events) == 3000 and len(queries) == 400
    assert {r["experiment"] for r in (*events.values(), *queries)} == {"e2e-exp"}
    arms = Counter(event["arm"] for event in events.values())
    assert chi_square(arms, WEIGHTS) < 13.82, arms  # 2 degrees of freedom, p = 0.001
    # Sticky: both processes answered each participant with one arm, the arm their events carry.
    assert all(first == second == events[user]["arm"] for user, (first, second) in answered.items())
    assert all(query["arm"] == events[query["user_id"]]["arm"] for query in queries)


def test_both_processes_show_the_same_experiment(system: ExperimentSystem) -> None:
    bodies = [httpx.get(f"{url}/experiment", headers=ADMIN).json() for url in system.urls]

    assert bodies[0] == bodies[1]
    assert [(arm["name"], arm["weight"]) for arm in bodies[0]["arms"]] == [("control", 5), ("cited", 3), ("solo", 2)]


def test_participants_and_queries_are_counted_across_processes(system: ExperimentSystem) -> None:
    before = httpx.get(f"{system.urls[0]}/experiment", headers=ADMIN).json()
    answered = asyncio.run(_query_on_both(system.urls, participants(50, "counted")))

    after = httpx.get(f"{system.urls[1]}/experiment", headers=ADMIN).json()

    assert after["participants"] - before["participants"] == 50
    assert after["queries"] - before["queries"] == 100
    new_per_arm = Counter(arms[0] for arms in answered.values())
    for old, new in zip(before["arms"], after["arms"], strict=True):
        assert new["participants"] - old["participants"] == new_per_arm[new["name"]]
