"""Starts and stops the local services: redis-server and SecantusDB (embedded MongoDB).

Used by `make run` (scripts/run.py) and by the test fixtures. Every process is ours, started
here and ended by PID; nothing else on the machine is touched.
"""

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
from pymongo import MongoClient

logger = logging.getLogger(__name__)

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout_s: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process {process.args[0]} exited with {process.returncode} before listening")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout_s} s")


@dataclass
class Service:
    """One child process. `port=0`: it listens on nothing; `log_path=None`: it logs to our terminal."""

    name: str
    args: list[str]
    port: int = 0
    log_path: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None

    def start(self, ready_timeout_s: float = 60) -> "Service":
        return self.launch().wait_listening(ready_timeout_s)

    def launch(self) -> "Service":
        """Start the process without waiting for it to listen (slow starters boot in parallel)."""
        log = None
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it until it exits
        self.process = subprocess.Popen(
            self.args, stdout=log, stderr=subprocess.STDOUT if log else None, env={**os.environ, **self.env},
            start_new_session=True,  # Ctrl-C in the terminal goes to us; we stop children in order
        )
        if log:
            log.close()
        return self

    def wait_listening(self, ready_timeout_s: float = 60) -> "Service":
        if self.port:
            wait_for_port(self.port, ready_timeout_s, self.process)
        logger.info("started %s pid=%s port=%s", self.name, self.pid, self.port or "-")
        return self

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def signal(self, sig: int) -> None:
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, sig)

    def stop(self, timeout_s: float = 15) -> None:
        """SIGTERM, then SIGKILL to its whole process group if it has not exited in time."""
        if not self.process or self.process.poll() is not None:
            return
        self.signal(signal.SIGTERM)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            logger.warning("%s did not stop in %s s; killing it and its children", self.name, timeout_s)
            self._kill_group()

    def _kill_group(self) -> None:
        # The group is the one `launch` created for this child (start_new_session), so it holds only
        # the child and what it started: uvicorn's workers would outlive a SIGKILL of their parent.
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(5)

    def kill(self) -> None:
        """kill -9, as a crash: the service and anything it started."""
        if self.process and self.process.poll() is None:
            self._kill_group()


def redis_service(port: int, data_dir: Path, appendfsync: str = "everysec", maxmemory: str = "0") -> Service:
    """redis-server with AOF on and `noeviction`: a full Redis refuses writes instead of dropping data."""
    server = shutil.which("redis-server")
    if server is None:
        raise RuntimeError("redis-server not found: run `make install` (apt-get install -y redis-server)")
    data_dir.mkdir(parents=True, exist_ok=True)
    args = [
        server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir),
        "--appendonly", "yes", "--appendfsync", appendfsync, "--maxmemory-policy", "noeviction",
        "--maxmemory", maxmemory, "--save", "", "--daemonize", "no", "--protected-mode", "yes",
    ]
    return Service("redis", args, port, log_path=data_dir / "redis.log")


def secantus_service(port: int, data_dir: Path) -> Service:
    data_dir.mkdir(parents=True, exist_ok=True)
    args = [str(VENV_BIN / "secantusd-py"), "--host", "127.0.0.1", "--port", str(port),
            "--storage-path", str(data_dir / "db"), "--log-level", "WARNING"]
    return Service("mongodb (SecantusDB)", args, port, log_path=data_dir / "secantus.log")


def wait_redis_ready(url: str, timeout_s: float = 30) -> None:
    client = redis.Redis.from_url(url, socket_timeout=1)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            client.ping()  # answers LOADING while replaying the AOF
            return
        except redis.RedisError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
        finally:
            client.close()


def wait_mongo_ready(uri: str, timeout_s: float = 60) -> None:
    with MongoClient(uri, serverSelectionTimeoutMS=int(timeout_s * 1000)) as client:
        client.admin.command("ping")
