"""Assignment to arms against a real Redis: weights, stickiness across processes, file changes, Redis down.

Each `Experiments` instance here stands for one API process (each has its own Redis connection).
"""

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis

from api.experiments import Experiments, hash_unit
from scripts.devstack import free_port
from shared.settings import Settings
from tests.experiment_helpers import THREE_ARMS, chi_square, participants, write_experiment
from tests.helpers import names_for

CHI2_DF2_P001 = 13.82  # chi-square, 2 degrees of freedom: exceeded by chance once in 1000 experiments
WEIGHTS = {arm["name"]: arm["weight"] for arm in THREE_ARMS}
EVEN = [{"name": "control", "weight": 1}, {"name": "cited", "weight": 1}, {"name": "solo", "weight": 1}]

Process = Callable[[Path], Experiments]


@pytest.fixture
async def process(settings: Settings) -> AsyncIterator[Process]:
    """Starts "API processes" sharing the test's Redis prefix, each with its own experiment file."""
    clients: list[Redis] = []

    def start(path: Path) -> Experiments:
        clients.append(Redis.from_url(settings.REDIS_URL))
        experiment_settings = settings.model_copy(update={"EXPERIMENT_FILE": str(path)})
        return Experiments(experiment_settings, clients[-1], names_for(settings))

    yield start
    for client in clients:
        await client.aclose()


async def _assign_all(experiments: Experiments, users: list[str]) -> dict[str, str]:
    return {user: (await experiments.assign(user)).arm for user in users}


def test_hash_is_uniform_and_keyed_by_name_and_user() -> None:
    assert 0 <= hash_unit("exp", "u1") < 1
    assert hash_unit("exp", "u1") == hash_unit("exp", "u1")
    assert hash_unit("exp", "u1") != hash_unit("exp-2", "u1")
    assert hash_unit("ab", "c") != hash_unit("a", "bc")  # the length prefix keeps the pair unambiguous


def test_arms_follow_the_weights_within_sampling_error(tmp_path: Path) -> None:
    experiments = Experiments(Settings(_env_file=None, EXPERIMENT_FILE=str(
        write_experiment(tmp_path, "weights-1", THREE_ARMS))))

    observed = Counter(experiments.arm_by_hash(user) for user in participants(6000))

    assert set(observed) == set(WEIGHTS)
    assert chi_square(observed, WEIGHTS) < CHI2_DF2_P001, observed


async def test_first_query_records_the_hashed_arm_and_counts(tmp_path: Path, process: Process) -> None:
    experiments = process(write_experiment(tmp_path, "exp-1", THREE_ARMS))
    users = participants(1500)

    assigned = await _assign_all(experiments, users)
    await experiments.assign(users[0])

    assert assigned == {user: experiments.arm_by_hash(user) for user in users}
    assert chi_square(Counter(assigned.values()), WEIGHTS) < CHI2_DF2_P001
    counts = await experiments.counts()
    assert counts.participants == dict(Counter(assigned.values()))
    expected_queries = Counter(assigned.values())
    expected_queries[assigned[users[0]]] += 1
    assert counts.queries == dict(expected_queries)


async def test_conditions_carry_the_arm_overrides(tmp_path: Path, process: Process) -> None:
    experiments = process(write_experiment(tmp_path, "exp-1", THREE_ARMS))
    conditions = experiments.conditions()

    assert (conditions["cited"].temperature, conditions["cited"].system_prompt) == (0.2, "Cite every source as [n].")
    assert (conditions["solo"].model, conditions["solo"].history_turns) == ("openai/other-model", 0)
    assert conditions["control"].model == "gpt-4o-mini"
    assert {(c.experiment, c.arm) for c in conditions.values()} == {("exp-1", arm) for arm in WEIGHTS}
    assert experiments.max_history_turns == 5


async def test_arm_is_sticky_across_processes(tmp_path: Path, process: Process) -> None:
    path = write_experiment(tmp_path, "exp-1", THREE_ARMS)
    first, second = process(path), process(path)
    users = participants(300)

    assigned = await _assign_all(first, users)

    assert await _assign_all(second, users) == assigned
    assert {user: second.stamp(user)["arm"] for user in users} == assigned
    counts = await second.counts()
    assert sum(counts.participants.values()) == 300
    assert sum(counts.queries.values()) == 600


async def test_concurrent_first_queries_in_two_processes_agree(tmp_path: Path, process: Process) -> None:
    # A rolling deploy: two processes with different weights see a new participant at the same moment.
    old = process(write_experiment(tmp_path, "exp-1", EVEN, filename="old"))
    new = process(write_experiment(tmp_path, "exp-1", [{**EVEN[0], "weight": 1000}, *EVEN[1:]], filename="new"))
    users = participants(200)

    results = await asyncio.gather(*(asyncio.gather(old.assign(u), new.assign(u)) for u in users))

    assert all(a.arm == b.arm for a, b in results)
    assert sum((await new.counts()).participants.values()) == 200


async def test_weight_change_without_new_name_keeps_existing_participants(tmp_path: Path, process: Process) -> None:
    before = process(write_experiment(tmp_path, "exp-1", EVEN, filename="v1"))
    existing = await _assign_all(before, participants(600, "old"))
    # Same name, new weights and a new arm: only new participants follow them.
    changed = [{"name": "control", "weight": 100}, *EVEN[1:], {"name": "extra", "weight": 10}]
    after = process(write_experiment(tmp_path, "exp-1", changed, filename="v2"))
    await after.start()

    assert sum(after.arm_by_hash(u) != arm for u, arm in existing.items()) > 300  # the hash alone would move them
    assert {user: after.stamp(user)["arm"] for user in existing} == existing  # events: no Redis round trip
    assert await _assign_all(after, list(existing)) == existing
    newcomers = Counter((await _assign_all(after, participants(1000, "new"))).values())
    assert chi_square(newcomers, {"control": 100, "cited": 1, "solo": 1, "extra": 10}) < 16.27  # df 3, p 0.001


async def test_a_process_learns_assignments_made_after_its_start(tmp_path: Path, process: Process) -> None:
    # A rolling deploy: the new process starts (and loads) while the old one still assigns newcomers.
    after = process(write_experiment(tmp_path, "exp-1", [{**EVEN[0], "weight": 100}, *EVEN[1:]], filename="v2"))
    await after.start()
    before = process(write_experiment(tmp_path, "exp-1", EVEN, filename="v1"))
    existing = await _assign_all(before, participants(300))

    assert await _assign_all(after, list(existing)) == existing
    assert {user: after.stamp(user)["arm"] for user in existing} == existing


async def test_a_new_experiment_name_reshuffles_everyone(tmp_path: Path, process: Process) -> None:
    first = process(write_experiment(tmp_path, "exp-1", THREE_ARMS, filename="v1"))
    users = participants(600)
    before = await _assign_all(first, users)
    renamed = process(write_experiment(tmp_path, "exp-2", THREE_ARMS, filename="v2"))
    await renamed.start()

    after = await _assign_all(renamed, users)

    assert after == {user: renamed.arm_by_hash(user) for user in users}
    assert sum(before[u] != after[u] for u in users) > 200  # independent draws: ~62% change arm
    assert sum((await renamed.counts()).participants.values()) == 600  # counted afresh under the new name
    assert all(stamp["experiment"] == "exp-2" for stamp in map(renamed.stamp, users))


async def test_participants_of_a_removed_arm_move_at_start(
    tmp_path: Path, process: Process, caplog: pytest.LogCaptureFixture,
) -> None:
    before = process(write_experiment(tmp_path, "exp-1", EVEN, filename="v1"))
    existing = await _assign_all(before, participants(300))
    in_solo = [user for user, arm in existing.items() if arm == "solo"]
    after = process(write_experiment(tmp_path, "exp-1", EVEN[:2], filename="v2"))

    with caplog.at_level(logging.WARNING, logger="api.experiments"):
        await after.start()

    assert in_solo
    assert [r.moved for r in caplog.records if r.getMessage() == "experiment assignments loaded"] == [len(in_solo)]
    assert all(after.stamp(user)["arm"] == after.arm_by_hash(user) for user in in_solo)
    assert await _assign_all(after, in_solo) == {user: after.arm_by_hash(user) for user in in_solo}
    counts = await after.counts()
    assert counts.participants["solo"] == 0
    assert sum(counts.participants.values()) == 300
    kept = [user for user in existing if user not in in_solo]
    assert await _assign_all(after, kept) == {user: existing[user] for user in kept}


async def test_redis_down_assigns_by_hash_and_logs_once(
    tmp_path: Path, settings: Settings, caplog: pytest.LogCaptureFixture,
) -> None:
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    experiments = Experiments(settings.model_copy(update={"EXPERIMENT_FILE": str(
        write_experiment(tmp_path, "exp-1", THREE_ARMS))}), dead, names_for(settings))
    users = participants(20)

    with caplog.at_level(logging.WARNING, logger="api.experiments"):
        await experiments.start()
        assigned = await _assign_all(experiments, users)

    assert assigned == {user: experiments.arm_by_hash(user) for user in users}
    messages = [r.getMessage() for r in caplog.records]
    assert messages.count("redis unavailable: experiment arms by hash, not recorded or counted") == 1
    await dead.aclose()


def test_no_experiment_means_no_stamp_and_the_default_condition() -> None:
    experiments = Experiments(Settings(_env_file=None))

    assert experiments.stamp("u1") == {}
    assert experiments.condition_for("u1").arm is None
    assert not experiments.is_running
