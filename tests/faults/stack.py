"""The system under fault: redis-server (AOF, appendfsync always), SecantusDB, the uvicorn API and
worker processes, all on 127.0.0.1 and ours by PID; plus direct reads of what Redis and MongoDB hold.
"""

import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from pymongo import MongoClient

from scripts.devstack import Service, free_port, redis_service, secantus_service, wait_mongo_ready, wait_redis_ready
from shared.mongo import DEAD_LETTERS
from shared.stream import StreamNames
from tests.processes import api_service, app_env, wait_ready, wait_until, worker_service

PREFIX = "faults"
DB = "faults"

# Small and fast on purpose: reclaim within seconds, short backoff, a watermark scenario 7 can reach.
SUITE_SETTINGS = {
    "STREAM_PREFIX": PREFIX,
    "MONGO_DB": DB,
    "FLUSH_INTERVAL_MS": "100",  # a worker holds each batch ~100 ms: a window to kill it mid-batch
    "RECLAIM_IDLE_MS": "2000",
    "MAX_DELIVERIES": "2",  # low, so kills during an outage push healthy records past it (scenario 2)
    "BACKOFF_MAX_S": "1",
    "MONGO_TIMEOUT_MS": "2000",
    "SHUTDOWN_GRACE_S": "5",
    "QUEUE_HIGH_WATERMARK": "600",
    "RETRY_AFTER_S": "1",
    "LOG_LEVEL": "INFO",
}


@dataclass
class FaultStack:
    root: Path
    redis: Service
    mongo: Service
    env: dict[str, str]
    api: Service
    workers: dict[str, Service] = field(default_factory=dict)
    names: StreamNames = field(default_factory=lambda: StreamNames.for_prefix(PREFIX))

    @classmethod
    def create(cls, root: Path) -> "FaultStack":
        redis_server = redis_service(free_port(), root / "redis", appendfsync="always")
        mongo = secantus_service(free_port(), root / "mongo")
        env = app_env(f"redis://127.0.0.1:{redis_server.port}/0",
                      f"mongodb://127.0.0.1:{mongo.port}/?directConnection=true", **SUITE_SETTINGS)
        return cls(root, redis_server, mongo, env, api_service(env, root / "logs"))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api.port}"

    def start(self, worker_count: int = 2) -> "FaultStack":
        self.api.launch()  # importing LiteLLM takes seconds: let it boot while the stores start
        self.redis.start()
        wait_redis_ready(self.env["REDIS_URL"])
        self.mongo.start()
        wait_mongo_ready(self.env["MONGODB_URI"])
        for i in range(worker_count):
            self.add_worker(f"w{i + 1}")
        self.api.wait_listening(180)
        wait_ready(self.url)
        return self

    def add_worker(self, name: str) -> Service:
        self.workers[name] = worker_service(self.env, self.root / "logs", name).start()
        return self.workers[name]

    def stop(self) -> None:
        for service in (self.api, *self.workers.values(), self.mongo, self.redis):
            service.stop()

    def ensure_running(self) -> None:
        """Bring back anything an earlier scenario left down, so each scenario starts whole."""
        if self.redis.process.poll() is not None:
            self.redis.start()
        wait_redis_ready(self.env["REDIS_URL"])
        if self.mongo.process.poll() is not None:
            self.mongo.start()
        wait_mongo_ready(self.env["MONGODB_URI"])
        for name in ("w1", "w2"):
            if name not in self.workers or self.workers[name].process.poll() is not None:
                self.add_worker(name)
        if self.api.process.poll() is not None:
            self.api.start(180)
        wait_ready(self.url)

    def restart_redis_hard(self) -> None:
        self.redis.kill()
        self.redis.start()
        wait_redis_ready(self.env["REDIS_URL"])

    def terminate(self, service: Service, timeout_s: float) -> int | None:
        """SIGTERM and wait; the exit code, or None if it had to be killed."""
        service.signal(signal.SIGTERM)
        try:
            return service.process.wait(timeout_s)
        except Exception:
            service.kill()
            return None

    # What Redis holds.

    def _redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.env["REDIS_URL"], socket_timeout=5)

    def backlog(self) -> int:
        with self._redis() as client:
            return client.xlen(self.names.records)

    def pending_by_consumer(self) -> dict[str, int]:
        with self._redis() as client:
            summary = client.xpending(self.names.records, self.names.group)
        return {c["name"].decode(): int(c["pending"]) for c in summary.get("consumers") or []}

    def delivery_counts(self, consumer: str) -> list[int]:
        """How often each entry `consumer` holds has been delivered."""
        with self._redis() as client:
            pending = client.xpending_range(self.names.records, self.names.group, min="-", max="+",
                                            count=10_000, consumername=consumer)
        return [p["times_delivered"] for p in pending]

    def xadd_raw(self, fields: dict[str, Any]) -> str:
        with self._redis() as client:
            return client.xadd(self.names.records, fields).decode()

    def parked_dead_letters(self) -> int:
        with self._redis() as client:
            return client.xlen(self.names.dead_letters)

    def is_drained(self) -> bool:
        return self.backlog() == 0 and not any(self.pending_by_consumer().values())

    # What MongoDB holds.

    def _mongo(self) -> MongoClient:
        return MongoClient(self.env["MONGODB_URI"], serverSelectionTimeoutMS=5000)

    def stored_events(self, scenario: str) -> list[dict[str, Any]]:
        with self._mongo() as client:
            return list(client[DB]["events"].find({"scenario": scenario}, {"_id": 1, "event_id": 1}))

    def stored_event_ids(self, scenario: str) -> set[str]:
        return {doc["_id"] for doc in self.stored_events(scenario)}

    def dead_letters(self) -> list[dict[str, Any]]:
        with self._mongo() as client:
            return list(client[DB][DEAD_LETTERS].find({}))

    def wait_drained(self, accepted: set[str], scenario: str, timeout_s: float) -> bool:
        return wait_until(lambda: self.is_drained() and accepted <= self.stored_event_ids(scenario),
                          timeout_s, interval_s=0.1)

    def log_text(self, name: str) -> str:
        return (self.root / "logs" / f"{name}.log").read_text(errors="replace")
