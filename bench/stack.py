"""The processes a bench run needs, each started here and stopped by PID: stores, API, worker, baselines."""

import os
import sys
import threading
import time
from pathlib import Path

import httpx

from scripts.devstack import Service, free_port, redis_service, secantus_service, wait_mongo_ready, wait_redis_ready
from shared.stream import StreamNames

REPO_ROOT = Path(__file__).resolve().parent.parent


class BenchStack:
    """One redis-server and one SecantusDB for the whole run; apps come and go on free ports."""

    def __init__(self, root: Path, api_workers: int) -> None:
        self.root = root
        self.api_workers = api_workers
        self.redis = redis_service(free_port(), root / "redis")
        self.mongo = secantus_service(free_port(), root / "mongo")
        self.redis_url = f"redis://127.0.0.1:{self.redis.port}/0"
        self.mongo_uri = f"mongodb://127.0.0.1:{self.mongo.port}/?directConnection=true"
        self.admin_key = "bench-admin"
        self.db_name = "bench"
        self.names = StreamNames.for_prefix("bench")
        self._running: list[Service] = []

    def start_stores(self) -> None:
        self.redis.start()
        wait_redis_ready(self.redis_url)
        self.start_mongo()

    def start_mongo(self) -> None:
        self.mongo.start()
        wait_mongo_ready(self.mongo_uri)

    def app_env(self, **overrides: str) -> dict[str, str]:
        env = {
            "REDIS_URL": self.redis_url, "MONGODB_URI": self.mongo_uri, "MONGO_DB": self.db_name,
            "STREAM_PREFIX": self.names.prefix, "ADMIN_API_KEY": self.admin_key, "LLM_MOCK": "true",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True", "API_WORKERS": str(self.api_workers),
            "LOG_LEVEL": "WARNING", "PYTHONPATH": str(REPO_ROOT),
        }
        return {**env, **overrides}

    def start_app(self, name: str, module: str, **env: str) -> tuple[Service, str]:
        """`python -m <module>` served on a free port; returns it and its base URL once it answers."""
        port = free_port()
        service = Service(name, [sys.executable, "-m", module], port, log_path=self.root / "logs" / f"{name}.log",
                          env=self.app_env(API_PORT=str(port), **env))
        self._running.append(service)  # before start: one that fails to listen is still stopped
        service.start(ready_timeout_s=120)
        url = f"http://127.0.0.1:{port}"
        _wait_answering(url)
        return service, url

    def start_worker(self, **env: str) -> Service:
        service = Service("worker", [sys.executable, "-m", "worker"], log_path=self.root / "logs" / "worker.log",
                          env=self.app_env(WORKER_NAME=f"bench-{time.monotonic_ns()}", **env))
        self._running.append(service)
        return service.start()

    def stop(self, service: Service) -> None:
        service.stop()
        if service in self._running:
            self._running.remove(service)

    def stop_all(self) -> None:
        for service in reversed(self._running):
            service.stop()
        self._running.clear()
        self.mongo.stop()
        self.redis.stop()


def _wait_answering(url: str, timeout_s: float = 120) -> None:
    """Any HTTP answer will do (the floor has no /status); every uvicorn worker must be up, so ask a few times."""
    deadline = time.monotonic() + timeout_s
    answered = 0
    while answered < 8:
        try:
            httpx.get(f"{url}/status", timeout=2)
            answered += 1
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} not answering after {timeout_s} s") from None
            time.sleep(0.25)


def process_tree(pid: int) -> list[int]:
    """The pid and all its descendants (uvicorn's worker processes), from /proc."""
    pids = [pid]
    for current in pids:
        for task in Path(f"/proc/{current}/task").glob("*"):
            children = (task / "children").read_text().split() if (task / "children").exists() else []
            pids.extend(int(child) for child in children)
    return pids


def rss_mb(pid: int) -> float:
    """Resident memory of the process and its children."""
    total_kb = 0
    for child in process_tree(pid):
        for line in Path(f"/proc/{child}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total_kb += int(line.split()[1])
    return total_kb / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RssSampler:
    """Peak resident memory of some process trees, sampled in the background while load runs."""

    def __init__(self, pids: dict[str, int], interval_s: float = 0.5) -> None:
        self._pids = pids
        self._interval_s = interval_s
        self.peak_mb = dict.fromkeys(pids, 0.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, pid in self._pids.items():
                try:
                    self.peak_mb[name] = max(self.peak_mb[name], rss_mb(pid))
                except (FileNotFoundError, ProcessLookupError):
                    pass  # a child exited between listing and reading
            self._stop.wait(self._interval_s)
