"""Degraded modes under steady load: MongoDB down, poison records, a backlog past the high watermark.

Each scenario ends with `check_exactly_once`: the set of 2xx ids equals the set of stored ids.
"""

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from scripts.devstack import wait_mongo_ready
from tests.faults.load import LoadPlan, LoadRun
from tests.faults.report import Row, check_exactly_once
from tests.faults.stack import SUITE_SETTINGS, FaultStack
from tests.processes import wait_until

pytestmark = pytest.mark.faults

GRACE_S = float(SUITE_SETTINGS["SHUTDOWN_GRACE_S"])
_BACKOFF_LINE = "storage pipeline unavailable; retrying with backoff"


def test_s2_mongodb_stopped_for_ten_seconds(stack: FaultStack, report: list[Row]) -> None:
    # 450 events stay under the watermark even if none drains: the API must not notice MongoDB is gone.
    load = LoadRun(stack.url, LoadPlan("s2-mongodb-down", count=450, rate_per_s=25)).start()
    assert wait_until(lambda: load.result.finished >= 50, 30)
    logged_before = {name: stack.log_text(name).count(_BACKOFF_LINE) for name in stack.workers}

    stack.mongo.stop()
    outage_started = time.monotonic()
    w2 = stack.workers["w2"]
    assert wait_until(lambda: stack.pending_by_consumer().get("w2", 0) > 0, 8, interval_s=0.05)
    w2.signal(signal.SIGTERM)  # its batch cannot be stored: it must still exit, in bounded time
    assert w2.process.wait(GRACE_S + 5) == 0
    held_by_w2 = stack.pending_by_consumer().get("w2", 0)
    w2.start()  # same name: takes its held entries back while MongoDB is still down
    max_deliveries = int(SUITE_SETTINGS["MAX_DELIVERIES"])
    over_delivered = _kill_until_over_delivered(stack, "w1", max_deliveries)
    time.sleep(max(0.0, 10 - (time.monotonic() - outage_started)))
    stack.mongo.start()
    wait_mongo_ready(stack.env["MONGODB_URI"])
    load.join()

    logged = {name: stack.log_text(name).count(_BACKOFF_LINE) - logged_before[name] for name in stack.workers}
    report.append(check_exactly_once(stack, load, note=(
        f"degraded state logged per worker: {logged}; w2 SIGTERMed holding {held_by_w2} entries; "
        f"w1 killed until {over_delivered} entries were delivered > {max_deliveries} times")))
    assert over_delivered > 0
    assert load.result.refused == 0, dict(load.result.statuses)
    assert all(1 <= count <= 3 for count in logged.values()), logged  # per outage (and restart), not per record


def test_s8_redis_hung_for_twelve_seconds(stack: FaultStack, report: list[Row]) -> None:
    """SIGSTOP: Redis still accepts connections but answers nothing, unlike a crash (s3)."""
    load = LoadRun(stack.url, LoadPlan("s8-redis-hung", count=900, rate_per_s=50)).start()
    assert wait_until(lambda: load.result.finished >= 100, 30)
    stack.redis.signal(signal.SIGSTOP)
    try:
        time.sleep(12)
    finally:
        stack.redis.signal(signal.SIGCONT)
    load.join()

    timeout_s = float(SUITE_SETTINGS.get("REDIS_TIMEOUT_MS", 2000)) / 1000
    report.append(check_exactly_once(stack, load, note=(
        f"redis-server SIGSTOPped for 12 s; {load.result.fallback} written to MongoDB directly; "
        f"slowest answer {load.result.slowest_s:.1f} s, {load.result.slow} over 1 s")))
    assert load.result.fallback > 0, "the API never fell back to MongoDB while Redis hung"
    # Each request waits at most the Redis deadline, then MongoDB: not until Redis is back (12 s).
    assert load.result.slowest_s < 2 * timeout_s + 1, load.result.slowest_s
    # Only the requests in flight when it hung, and one probe at a time, wait for Redis; the rest go
    # to MongoDB at once (without the probe: 120 of 900 waited over a second, here 25).
    assert load.result.slow <= load.plan.concurrency + 12 / timeout_s + 10, load.result.slow
    assert load.result.refused == 0, dict(load.result.statuses)


def _kill_until_over_delivered(stack: FaultStack, name: str, max_deliveries: int) -> int:
    """kill -9 and restart a worker holding an unstorable batch until the batch is over-delivered.

    Healthy records past MAX_DELIVERIES must still be stored (alone), not dead-lettered.
    """
    worker = stack.workers[name]
    for deliveries in range(1, max_deliveries + 1):
        assert wait_until(lambda d=deliveries: max(stack.delivery_counts(name), default=0) >= d, 15, 0.05)
        worker.kill()
        worker.start()  # resumes its own entries: one more delivery each time
    assert wait_until(lambda: max(stack.delivery_counts(name), default=0) > max_deliveries, 15, 0.05)
    return sum(count > max_deliveries for count in stack.delivery_counts(name))


def _poison_makers() -> list[Callable[[int], dict[str, Any]]]:
    """Raw stream entries the API would never write; each must end up in dead_letters."""
    valid = {"timestamp": "2026-01-01T00:00:00Z", "user_id": "poison", "event_type": "x"}

    def record(j: int, **extra: Any) -> dict[str, Any]:
        return {"kind": "event", "data": json.dumps({"id": f"poison-{j}", **valid, **extra})}

    return [
        lambda j: {"kind": "event", "data": f'{{"poison_of": "s6", "j": {j}, not json'},
        lambda j: {"kind": "bogus", "data": json.dumps({"id": f"poison-{j}", **valid})},
        lambda j: {"data": json.dumps({"id": f"poison-{j}", **valid})},
        lambda j: {"kind": "event", "data": json.dumps({"id": f"poison-{j}"})},  # required fields missing
        lambda j: record(j, extra_data={"n": 2**70}),  # decodes, but BSON cannot hold it
        lambda j: record(j, extra_data={"nul\x00key": 1}),  # decodes, but the driver refuses the key
    ]


def test_s6_poison_records_mixed_into_valid_traffic(stack: FaultStack, report: list[Row]) -> None:
    load = LoadRun(stack.url, LoadPlan("s6-poison", count=600, rate_per_s=150)).start()
    makers = _poison_makers()
    poison_ids = set()
    for j in range(30):
        poison_ids.add(stack.xadd_raw(makers[j % len(makers)](j)))
        time.sleep(0.1)
    load.join()

    report.append(check_exactly_once(stack, load, poison_ids=frozenset(poison_ids),
                                     note=f"{len(poison_ids)} raw poison entries XADDed between valid ones"))

    listed = _dead_letters_cli(stack, "list", "--limit", "1000")
    assert listed.returncode == 0
    assert {json.loads(line)["_id"] for line in listed.stdout.splitlines()} == poison_ids
    replayed = _dead_letters_cli(stack, "replay")
    assert (replayed.returncode, json.loads(replayed.stdout)) == (1, {"stored": 0, "still_failing": 30})


def _dead_letters_cli(stack: FaultStack, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "worker", "dead-letters", *args], env={**os.environ, **stack.env},
                          capture_output=True, text=True, timeout=60, check=False)


def test_s7_backlog_past_the_high_watermark(stack: FaultStack, report: list[Row]) -> None:
    load = LoadRun(stack.url, LoadPlan("s7-backlog", count=1200, rate_per_s=250, concurrency=40)).start()
    assert wait_until(lambda: load.result.finished >= 100, 30)
    workers = list(stack.workers.values())
    for worker in workers:  # SIGTERM under load: each finishes and acks its batch
        worker.signal(signal.SIGTERM)
    exit_codes = [worker.process.wait(GRACE_S + 10) for worker in workers]
    pending = stack.pending_by_consumer()

    assert exit_codes == [0] * len(workers)
    assert [pending.get(worker.name, 0) for worker in workers] == [0] * len(workers)
    assert wait_until(lambda: load.result.statuses[503] > 0, 30), dict(load.result.statuses)
    body, retry_after = load.result.refusals[0]
    assert (body, retry_after) == ({"error": "the ingest queue is full; retry later"}, "1")
    peak = stack.backlog()
    stack.ensure_running()  # workers back: the backlog drains and the clients' retries get in
    load.join()

    report.append(check_exactly_once(stack, load, note=f"watermark 600; backlog {peak} while workers were stopped"))
