"""Steady load to 127.0.0.1: every event carries an `event_id`, so its stored id is known before it is sent.

A request that fails (503, refused connection, reset) is retried with the same `event_id`, as a
well-behaved client would, honouring `Retry-After`. Bounded in count, attempts and time.
"""

import asyncio
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from shared.records import event_record_id


@dataclass
class LoadPlan:
    scenario: str
    count: int
    rate_per_s: float
    concurrency: int = 20
    max_attempts: int = 60
    retry_delay_s: float = 0.5  # after a refused or reset connection
    retry_after_cap_s: float = 2.0
    deadline_s: float = 90.0  # no retry starts after this, counted from the start


@dataclass
class LoadResult:
    sent: set[str] = field(default_factory=set)  # the id of every event attempted
    accepted: set[str] = field(default_factory=set)  # got a 2xx
    statuses: Counter = field(default_factory=Counter)  # per attempt: 202, 503, "ConnectError", ...
    fallback: int = 0  # 2xx "stored": Redis was down, the API wrote to MongoDB
    refusals: list[tuple[dict[str, Any], str | None]] = field(default_factory=list)  # (503 body, Retry-After)
    unexpected: list[str] = field(default_factory=list)  # anything that is neither a 2xx nor retryable
    answers: list[tuple[float, str]] = field(default_factory=list)  # (time.monotonic(), "queued"/"stored")
    slowest_s: float = 0.0  # the longest any single attempt waited for its answer
    slow: int = 0  # attempts that waited more than a second
    finished: int = 0  # events settled (accepted or given up)
    finished_at: float = 0.0  # time.monotonic() when the last event settled

    @property
    def refused(self) -> int:
        return sum(n for status, n in self.statuses.items() if not (isinstance(status, int) and status < 300))


def event_body(scenario: str, i: int) -> tuple[str, dict[str, Any]]:
    user_id = f"{scenario}-user-{i % 25}"
    event_id = f"{scenario}-{i}"
    body = {"user_id": user_id, "event_id": event_id, "event_type": "fault-load", "session_id": f"s-{i % 7}",
            "scenario": scenario, "extra_data": {"i": i}}
    return event_record_id(user_id, event_id), body


class LoadRun:
    """Runs a plan in a background thread with its own event loop, while the test injects faults."""

    def __init__(self, base_url: str, plan: LoadPlan) -> None:
        self.base_url = base_url
        self.plan = plan
        self.result = LoadResult()
        self._thread = threading.Thread(target=asyncio.run, args=(self._run(),), name=f"load-{plan.scenario}")

    def start(self) -> "LoadRun":
        self._thread.start()
        return self

    def join(self, timeout_s: float = 180) -> LoadResult:
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            raise TimeoutError(f"load {self.plan.scenario} still running after {timeout_s} s")
        return self.result

    async def _run(self) -> None:
        plan = self.plan
        gate = asyncio.Semaphore(plan.concurrency)
        started = time.monotonic()
        limits = httpx.Limits(max_connections=plan.concurrency, max_keepalive_connections=plan.concurrency)
        async with httpx.AsyncClient(base_url=self.base_url, timeout=15, limits=limits) as client:
            tasks = []
            for i in range(plan.count):
                await asyncio.sleep(max(0.0, started + i / plan.rate_per_s - time.monotonic()))
                tasks.append(asyncio.create_task(self._send(client, gate, i, started + plan.deadline_s)))
            await asyncio.gather(*tasks)
        self.result.finished_at = time.monotonic()

    async def _send(self, client: httpx.AsyncClient, gate: asyncio.Semaphore, i: int, deadline: float) -> None:
        record_id, body = event_body(self.plan.scenario, i)
        self.result.sent.add(record_id)
        async with gate:
            for _ in range(self.plan.max_attempts):
                delay = await self._attempt(client, record_id, body)
                if delay is None or time.monotonic() + delay > deadline:
                    break
                await asyncio.sleep(delay)
        self.result.finished += 1

    async def _attempt(self, client: httpx.AsyncClient, record_id: str, body: dict[str, Any]) -> float | None:
        """One POST; returns how long to wait before retrying, or None when settled."""
        started = time.monotonic()
        try:
            response = await client.post("/log_event", json=body)
        except httpx.TransportError as exc:  # refused or reset: the API is restarting
            self.result.statuses[type(exc).__name__] += 1
            return self.plan.retry_delay_s
        finally:
            waited_s = time.monotonic() - started
            self.result.slowest_s = max(self.result.slowest_s, waited_s)
            self.result.slow += waited_s > 1
        self.result.statuses[response.status_code] += 1
        if response.is_success:
            answer = response.json()
            if answer.get("id") != record_id:
                self.result.unexpected.append(f"2xx with id {answer.get('id')!r}, expected {record_id}")
            self.result.accepted.add(record_id)
            self.result.fallback += answer.get("status") == "stored"
            self.result.answers.append((time.monotonic(), answer.get("status")))
            return None
        if response.status_code == 503:
            retry_after = response.headers.get("retry-after")
            if len(self.result.refusals) < 5:
                self.result.refusals.append((response.json(), retry_after))
            return min(float(retry_after or 1), self.plan.retry_after_cap_s)
        self.result.unexpected.append(f"{response.status_code}: {response.text[:200]}")
        return None


class SlowBodies:
    """Requests whose body is half sent, so they are in flight when the API gets SIGTERM."""

    def __init__(self, base_url: str, scenario: str, indexes: range, result: LoadResult) -> None:
        self.base_url = base_url
        self.scenario = scenario
        self.indexes = indexes
        self.result = result
        self.statuses: list[int | str] = []
        self.half_sent = threading.Event()
        self._release = threading.Event()
        self._halves = 0
        self._thread = threading.Thread(target=asyncio.run, args=(self._run(),), name="slow-bodies")

    def start(self) -> "SlowBodies":
        self._thread.start()
        return self

    def finish(self, timeout_s: float = 60) -> list[int | str]:
        """Send the second halves and wait for the answers."""
        self._release.set()
        self._thread.join(timeout_s)
        return self.statuses

    async def _run(self) -> None:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=60) as client:
            await asyncio.gather(*(self._send(client, i) for i in self.indexes))

    async def _send(self, client: httpx.AsyncClient, i: int) -> None:
        record_id, body = event_body(self.scenario, i)
        self.result.sent.add(record_id)
        raw = json.dumps(body).encode()

        async def halves():
            yield raw[:20]
            self._halves += 1
            if self._halves == len(self.indexes):
                self.half_sent.set()
            await asyncio.to_thread(self._release.wait, 60)
            yield raw[20:]

        try:
            response = await client.post("/log_event", content=halves(), headers={"content-type": "application/json"})
        except httpx.TransportError as exc:
            self.statuses.append(type(exc).__name__)
            return
        self.statuses.append(response.status_code)
        if response.is_success and response.json().get("id") == record_id:
            self.result.accepted.add(record_id)
