"""Processes dying or restarting under steady load: workers (kill -9 and SIGTERM), Redis, the API.

Each scenario ends with `check_exactly_once`: the set of 2xx ids equals the set of stored ids.
"""

import signal
import time

import httpx
import pytest

from scripts.devstack import Service
from tests.faults.load import LoadPlan, LoadRun, SlowBodies
from tests.faults.report import Row, check_exactly_once
from tests.faults.stack import SUITE_SETTINGS, FaultStack
from tests.processes import wait_ready, wait_until

pytestmark = pytest.mark.faults

GRACE_S = float(SUITE_SETTINGS["SHUTDOWN_GRACE_S"])


def _wait_progress(load: LoadRun, finished: int, timeout_s: float = 60) -> None:
    assert wait_until(lambda: load.result.finished >= finished, timeout_s), f"load stuck at {load.result.finished}"


def _kill_mid_batch(stack: FaultStack, worker: Service) -> int:
    """kill -9 the worker while it holds read-but-unacked entries; returns how many it left behind."""
    wait_until(lambda: stack.pending_by_consumer().get(worker.name, 0) > 0, 10, interval_s=0.01)
    worker.kill()
    return stack.pending_by_consumer().get(worker.name, 0)


def test_s1_kill_9_workers_mid_batch_several_times(stack: FaultStack, report: list[Row]) -> None:
    load = LoadRun(stack.url, LoadPlan("s1-kill-9-workers", count=1200, rate_per_s=150)).start()
    left_behind = []
    for k, name in enumerate(["w1", "w2", "w1"]):
        _wait_progress(load, (k + 1) * 250)
        worker = stack.workers[name]
        left_behind.append(_kill_mid_batch(stack, worker))
        if k == 1:  # stays dead for a while: the survivor must reclaim (XAUTOCLAIM) its entries
            time.sleep(float(SUITE_SETTINGS["RECLAIM_IDLE_MS"]) / 1000 + 1)
        worker.start()  # same WORKER_NAME: resumes its own unacked entries at once
    load.join()

    report.append(check_exactly_once(stack, load, note=f"unacked entries left by each kill: {left_behind}"))
    assert sum(left_behind) > 0, "no kill landed mid-batch"


def test_s3_redis_killed_and_restarted_with_aof_always(stack: FaultStack, report: list[Row]) -> None:
    load = LoadRun(stack.url, LoadPlan("s3-redis-restart", count=900, rate_per_s=150)).start()
    _wait_progress(load, 250)
    stack.redis.kill()  # kill -9: with appendfsync always, every XADD that was answered is on disk
    time.sleep(2)  # meanwhile the API writes straight to MongoDB
    stack.redis.start()
    back_at = time.monotonic()
    load.join()

    report.append(check_exactly_once(stack, load, note="kill -9 redis-server for 2 s; AOF appendfsync always"))
    assert load.result.fallback > 0, "the API never fell back to MongoDB while Redis was down"
    assert any(status == "queued" for t, status in load.result.answers if t > back_at), "API never reconnected"
    assert all(worker.process.poll() is None for worker in stack.workers.values()), "a worker process died"


def test_s4_api_sigterm_finishes_in_flight_requests_then_restarts(stack: FaultStack, report: list[Row]) -> None:
    scenario = "s4-api-restart"
    load = LoadRun(stack.url, LoadPlan(scenario, count=600, rate_per_s=60)).start()
    _wait_progress(load, 120)
    in_flight = SlowBodies(stack.url, scenario, range(10_000, 10_005), load.result).start()
    assert in_flight.half_sent.wait(10)
    time.sleep(1)  # let uvicorn parse their headers: from then on they are in-flight requests

    stack.api.signal(signal.SIGTERM)

    assert wait_until(lambda: not _accepts_connections(stack.url), 10), "API still accepts connections"
    assert in_flight.finish() == [202] * 5  # in-flight requests finish after SIGTERM
    # uvicorn re-raises the SIGTERM it caught once its graceful shutdown is done; not SIGKILL's -9.
    assert stack.api.process.wait(GRACE_S + 10) == -signal.SIGTERM
    stack.api.start(180)
    wait_ready(stack.url)
    load.join()

    report.append(check_exactly_once(stack, load, note="SIGTERM with 5 requests in flight; all answered 202"))


def test_s5_three_workers_share_the_stream(stack: FaultStack, report: list[Row]) -> None:
    third = stack.add_worker("w3")
    load = LoadRun(stack.url, LoadPlan("s5-three-workers", count=1500, rate_per_s=250, concurrency=30)).start()
    _wait_progress(load, 1000)
    wait_until(lambda: stack.pending_by_consumer().get("w3", 0) > 0, 5, interval_s=0.01)

    exit_code = stack.terminate(third, timeout_s=GRACE_S + 10)  # SIGTERM mid-load: finish, ack, exit

    assert exit_code == 0
    assert stack.pending_by_consumer().get("w3", 0) == 0, "w3 exited without acking its batch"
    del stack.workers["w3"]
    load.join()
    report.append(check_exactly_once(stack, load, note="w3 stopped by SIGTERM at 2/3 of the load"))
    assert "drained batch" in stack.log_text("w3")


def _accepts_connections(url: str) -> bool:
    try:
        httpx.get(f"{url}/status", timeout=2)
    except httpx.TransportError:
        return False
    return True
