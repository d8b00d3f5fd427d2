"""GET /experiment, and the arm on every query and event record, through the real app and stores."""

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from redis.asyncio import Redis

from api.experiments import Experiments
from api.main import create_app
from scripts.devstack import Service, free_port
from shared.settings import Settings
from tests.conftest import make_settings
from tests.experiment_helpers import THREE_ARMS, participants, write_experiment
from tests.helpers import drain, names_for, stored

EVEN = [{"name": "control", "weight": 1}, {"name": "cited", "weight": 1}, {"name": "solo", "weight": 1}]


@pytest.fixture
def experiment_settings(tmp_path: Path, redis_server: Service, mongo_server: Service) -> Settings:
    return make_settings(redis_server, mongo_server,
                         EXPERIMENT_FILE=str(write_experiment(tmp_path, "exp-1", THREE_ARMS)))


@pytest.fixture
def app_client(experiment_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(experiment_settings)) as client:
        yield client


def _experiments(settings: Settings) -> Experiments:
    """Another process's view of the same experiment (for the hash, and to assign as an older process)."""
    return Experiments(settings)


def _query(client: TestClient, user_id: str, session_id: str = "s1") -> dict:
    response = client.post("/query", json={"user_id": user_id, "session_id": session_id, "query": "Good boots?"})
    assert response.status_code == 200, response.text
    return response.json()


async def _assign_as_older_process(settings: Settings, users: list[str]) -> dict[str, str]:
    redis = Redis.from_url(settings.REDIS_URL)
    try:
        experiments = Experiments(settings, redis, names_for(settings))
        return {user: (await experiments.assign(user)).arm for user in users}
    finally:
        await redis.aclose()


def test_query_answer_and_record_carry_the_arm(app_client: TestClient, experiment_settings: Settings) -> None:
    experiments = _experiments(experiment_settings)
    users = participants(60)

    answers = {user: _query(app_client, user) for user in users}

    assert {u: (a["experiment"], a["arm"]) for u, a in answers.items()} == {
        u: ("exp-1", experiments.arm_by_hash(u)) for u in users}
    drain(experiment_settings)
    documents = stored(experiment_settings, "queries")
    assert {d["user_id"]: (d["experiment"], d["arm"]) for d in documents} == {
        u: (a["experiment"], a["arm"]) for u, a in answers.items()}
    solo = next(d for d in documents if d["arm"] == "solo")
    assert (solo["model_requested"], solo["history_turns"]) == ("openai/other-model", 0)


def test_every_event_is_stamped_with_the_users_arm(app_client: TestClient, experiment_settings: Settings) -> None:
    users = participants(200)
    for user in users[:100]:
        assert app_client.post("/log_event", json={"user_id": user, "event_type": "click"}).status_code == 202
    batch = [{"user_id": user, "event_type": "scroll"} for user in users[100:]]
    assert app_client.post("/log_events", json={"events": batch}).status_code == 202
    partial = [{"user_id": users[0], "event_type": "hover"}, {"event_type": "no user"}]
    assert app_client.post("/log_events", json={"events": partial}).status_code == 207

    drain(experiment_settings)
    events = stored(experiment_settings, "events")
    assert len(events) == 201
    experiments = _experiments(experiment_settings)
    assert all((e["experiment"], e["arm"]) == ("exp-1", experiments.arm_by_hash(e["user_id"])) for e in events)
    assert set(Counter(e["arm"] for e in events)) == {"control", "cited", "solo"}


def test_the_arm_is_the_same_in_two_app_instances(experiment_settings: Settings) -> None:
    users = participants(40)
    with TestClient(create_app(experiment_settings)) as first:
        arms_first = {user: _query(first, user)["arm"] for user in users}
    with TestClient(create_app(experiment_settings)) as second:
        arms_second = {user: _query(second, user)["arm"] for user in users}
        for user in users:
            second.post("/log_event", json={"user_id": user, "event_type": "click"})

    assert arms_first == arms_second
    drain(experiment_settings)
    assert {e["user_id"]: e["arm"] for e in stored(experiment_settings, "events")} == arms_first


def test_weight_change_keeps_existing_participants_on_queries_and_events(
    tmp_path: Path, redis_server: Service, mongo_server: Service,
) -> None:
    before = make_settings(redis_server, mongo_server,
                           EXPERIMENT_FILE=str(write_experiment(tmp_path, "exp-1", EVEN, filename="v1")))
    existing = asyncio.run(_assign_as_older_process(before, participants(90)))
    changed = [{"name": "control", "weight": 100}, *EVEN[1:]]
    v2 = write_experiment(tmp_path, "exp-1", changed, filename="v2")
    after = before.model_copy(update={"EXPERIMENT_FILE": str(v2)})

    with TestClient(create_app(after)) as client:
        answered = {user: _query(client, user)["arm"] for user in existing}
        for user in existing:
            client.post("/log_event", json={"user_id": user, "event_type": "click"})

    assert Counter(existing.values())["control"] < 60  # v2's hash alone would put nearly all in control
    assert answered == existing
    drain(after)
    assert {e["user_id"]: e["arm"] for e in stored(after, "events")} == existing
    assert {q["user_id"]: q["arm"] for q in stored(after, "queries")} == existing


def test_get_experiment_shows_arms_settings_and_counts(
    app_client: TestClient, experiment_settings: Settings, admin_headers: dict[str, str],
) -> None:
    assigned = asyncio.run(_assign_as_older_process(experiment_settings, participants(100)))

    response = app_client.get("/experiment", headers=admin_headers)

    assert response.status_code == 200
    body = response.json()
    assert (body["experiment"], body["participants"], body["queries"]) == ("exp-1", 100, 100)
    arms = {arm["name"]: arm for arm in body["arms"]}
    assert list(arms) == ["control", "cited", "solo"]
    assert {name: arm["participants"] for name, arm in arms.items()} == dict(Counter(assigned.values()))
    assert (arms["control"]["weight"], arms["control"]["share"]) == (5, 0.5)
    assert arms["cited"]["overrides"] == {"temperature": 0.2, "system_prompt": "Cite every source as [n]."}
    assert arms["cited"]["condition"]["temperature"] == 0.2
    assert arms["solo"]["condition"]["model"] == "openai/other-model"
    assert len(arms["cited"]["condition"]["system_prompt_hash"]) == 16
    assert body["removed_arms"] == []


def test_queries_are_counted_per_arm(
    app_client: TestClient, experiment_settings: Settings, admin_headers: dict[str, str],
) -> None:
    users = participants(30)
    arms = {user: _query(app_client, user)["arm"] for user in users}
    _query(app_client, users[0])

    body = app_client.get("/experiment", headers=admin_headers).json()

    counts = {arm["name"]: (arm["participants"], arm["queries"]) for arm in body["arms"]}
    expected = Counter(arms.values())
    assert counts[arms[users[0]]] == (expected[arms[users[0]]], expected[arms[users[0]]] + 1)
    assert (body["participants"], body["queries"]) == (30, 31)


def test_query_keeps_session_history(app_client: TestClient, experiment_settings: Settings) -> None:
    user = next(u for u in participants(50) if _experiments(experiment_settings).arm_by_hash(u) == "control")
    _query(app_client, user)
    _query(app_client, user)

    async def session_length() -> int:
        redis = Redis.from_url(experiment_settings.REDIS_URL)
        try:
            return await redis.llen(names_for(experiment_settings).session_key(user, "s1"))
        finally:
            await redis.aclose()

    assert asyncio.run(session_length()) == 2


def test_get_experiment_needs_the_admin_key(app_client: TestClient) -> None:
    response = app_client.get("/experiment")

    assert response.status_code == 401
    assert "admin key" in response.json()["error"]


def test_get_experiment_without_an_experiment_is_404(client: TestClient, admin_headers: dict[str, str]) -> None:
    response = client.get("/experiment", headers=admin_headers)

    assert response.status_code == 404
    assert response.json() == {
        "error": "no experiment is configured: set EXPERIMENT_FILE to a YAML or JSON experiment file"}


def test_without_an_experiment_records_have_no_arm(client: TestClient, settings: Settings) -> None:
    assert _query(client, "u1")["arm"] is None
    client.post("/log_event", json={"user_id": "u1", "event_type": "click"})

    drain(settings)
    [event] = stored(settings, "events")
    assert "arm" not in event and "experiment" not in event
    [query] = stored(settings, "queries")
    assert query["arm"] is None


def test_get_experiment_with_redis_down_is_503(
    experiment_settings: Settings, admin_headers: dict[str, str],
) -> None:
    down = experiment_settings.model_copy(update={"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    with TestClient(create_app(down)) as client:
        response = client.get("/experiment", headers=admin_headers)

    assert response.status_code == 503
    assert response.json()["error"] == "experiment counts are unavailable: Redis does not answer"
    assert response.headers["Retry-After"] == str(down.RETRY_AFTER_S)


def test_openapi_documents_get_experiment(app_client: TestClient) -> None:
    operation = app_client.get("/openapi.json").json()["paths"]["/experiment"]["get"]

    assert {"200", "401", "403", "404", "503"} <= set(operation["responses"])
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ExperimentOut"}
