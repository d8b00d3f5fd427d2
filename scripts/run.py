"""`make run`: start Redis, embedded MongoDB (unless MONGODB_URI is set), the worker and the API.

A child that exits on its own (a killed worker, a crashed database) is started again, like a
`restart: unless-stopped` policy; one that keeps exiting stops everything. Ctrl-C or SIGTERM stops
everything this script started, API first so in-flight requests finish, then the workers so they
ack their batches, then the databases.
"""

import logging
import os
import secrets
import signal
import socket
import sys
import threading
import time
from collections import deque
from pathlib import Path

from dotenv import dotenv_values

from scripts.devstack import Service, redis_service, secantus_service, wait_mongo_ready, wait_redis_ready

logger = logging.getLogger("make-run")
PYTHON = sys.executable
# A service that exits this many times within the window is crash-looping: stop instead of restarting.
_CRASH_LOOP_RESTARTS = 5
_CRASH_LOOP_WINDOW_S = 60.0


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _require_free(port: int, variable: str) -> None:
    if not _port_is_free(port):
        sys.exit(f"port {port} is already in use; set {variable} to another port, or point the URL at that server")


def _admin_key(env: dict[str, str], data_dir: Path) -> str:
    """Keep a generated key across runs so a front end configured once keeps working."""
    key_file = data_dir / "admin_api_key"
    if key_file.exists():
        return key_file.read_text().strip()
    key = secrets.token_urlsafe(24)
    key_file.write_text(key + "\n")
    key_file.chmod(0o600)
    return key


def require_free_ports(env: dict[str, str]) -> None:
    """Every port `make run` will listen on, before anything starts: a clash stops it with nothing to clean up."""
    if not env.get("REDIS_URL"):
        _require_free(int(env.get("REDIS_PORT", "6379")), "REDIS_PORT")
    if not env.get("MONGODB_URI"):
        _require_free(int(env.get("MONGO_PORT", "27017")), "MONGO_PORT")
    _require_free(int(env["API_PORT"]), "API_PORT")


def start_stores(env: dict[str, str], data_dir: Path, started: list[Service]) -> list[Service]:
    """`started` gets each service as it is launched, so a failure later still stops it."""
    services = []
    if not env.get("REDIS_URL"):
        port = int(env.get("REDIS_PORT", "6379"))
        redis = redis_service(port, data_dir / "redis", env.get("REDIS_APPENDFSYNC", "everysec"),
                              env.get("REDIS_MAXMEMORY", "1gb"))
        started.append(redis.launch())
        services.append(redis.wait_listening())
        env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    wait_redis_ready(env["REDIS_URL"])
    if not env.get("MONGODB_URI"):
        port = int(env.get("MONGO_PORT", "27017"))
        mongo = secantus_service(port, data_dir / "mongo")
        started.append(mongo.launch())
        services.append(mongo.wait_listening())
        env["MONGODB_URI"] = f"mongodb://127.0.0.1:{port}/?directConnection=true"
    else:
        logger.info("using MONGODB_URI from the environment; not starting the embedded MongoDB")
    wait_mongo_ready(env["MONGODB_URI"])
    return services


def start_app(env: dict[str, str], started: list[Service]) -> tuple[list[Service], Service]:
    workers = [
        Service(f"worker-{i}", [PYTHON, "-m", "worker"], env={**env, "WORKER_NAME": f"{socket.gethostname()}-w{i}"})
        for i in range(int(env.get("WORKER_PROCESSES", "1")))
    ]
    for worker in workers:
        started.append(worker.launch())
        worker.wait_listening()
    api = Service("api", [PYTHON, "-m", "api"], int(env["API_PORT"]), env=env)
    started.append(api.launch())
    api.wait_listening(ready_timeout_s=120)
    return workers, api


class Restarts:
    """Restart times per service, to tell a crash (restart it) from a crash loop (give up)."""

    def __init__(self) -> None:
        self._times: dict[str, deque[float]] = {}

    def allow(self, name: str) -> bool:
        times = self._times.setdefault(name, deque())
        now = time.monotonic()
        while times and now - times[0] > _CRASH_LOOP_WINDOW_S:
            times.popleft()
        times.append(now)
        return len(times) <= _CRASH_LOOP_RESTARTS


def restart_exited(services: list[Service], restarts: Restarts) -> bool:
    """Start again whatever exited (a killed worker, a stopped MongoDB); False on a crash loop."""
    for service in services:
        code = service.process.poll()
        if code is None:
            continue
        if not restarts.allow(service.name):
            logger.error("%s keeps exiting (last code %s); stopping everything", service.name, code)
            return False
        logger.error("%s exited with code %s; restarting it", service.name, code)
        try:
            service.start(ready_timeout_s=120)
        except (OSError, RuntimeError, TimeoutError) as exc:
            logger.error("%s did not come back: %s", service.name, exc)
    return True


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    env = {**{k: v for k, v in dotenv_values(".env").items() if v is not None}, **os.environ}
    env.setdefault("API_PORT", "8000")
    env.setdefault("API_WORKERS", str(os.cpu_count() or 1))
    env.setdefault("API_HOST", "127.0.0.1")
    data_dir = Path(env.get("DATA_DIR", ".data")).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    if not env.get("ADMIN_API_KEY"):
        env["ADMIN_API_KEY"] = _admin_key(env, data_dir)
        logger.warning("ADMIN_API_KEY was not set; using %s (kept in %s)", env["ADMIN_API_KEY"], data_dir / "admin_api_key")

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    require_free_ports(env)
    started: list[Service] = []
    try:
        stores = start_stores(env, data_dir, started)
        workers, api = start_app(env, started)
        logger.warning("ready: http://%s:%s  (Ctrl-C stops everything)", env["API_HOST"], env["API_PORT"])
        restarts = Restarts()
        while not stop.wait(0.5):
            if not restart_exited([*stores, *workers, api], restarts):
                break
    finally:
        for service in reversed(started):  # the API first, the stores last
            service.stop()
        logger.info("stopped")


if __name__ == "__main__":
    main()
