"""Runs `wrk` with bench/post.lua against 127.0.0.1 and returns what it measured."""

import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

LUA = Path(__file__).with_name("post.lua")


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    ok: int
    other: int
    socket_errors: int
    p50_ms: float
    p99_ms: float

    @property
    def ok_per_s(self) -> float:
        return self.ok / self.seconds

    @property
    def share_2xx(self) -> float:
        answered_or_failed = self.ok + self.other + self.socket_errors
        return self.ok / answered_or_failed if answered_or_failed else 0.0


def run_wrk(url: str, body: bytes, connections: int, seconds: int, content_type: str = "application/json",
            threads: int = 2, timeout_s: float = 5) -> LoadResult:
    with tempfile.NamedTemporaryFile(suffix=".json") as body_file:
        body_file.write(body)
        body_file.flush()
        command = ["wrk", f"-t{min(threads, connections)}", f"-c{connections}", f"-d{seconds}s", f"-T{timeout_s}s",
                   "-s", str(LUA), url, "--", body_file.name, content_type]
        output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    line = next(line for line in output.splitlines() if line.startswith("BENCH_JSON "))
    raw = json.loads(line.removeprefix("BENCH_JSON "))
    return LoadResult(
        requests=raw["requests"], seconds=raw["duration_us"] / 1e6, ok=raw["ok"], other=raw["other"],
        socket_errors=sum(raw["errors"].values()),
        p50_ms=raw["latency_us"]["p50"] / 1000, p99_ms=raw["latency_us"]["p99"] / 1000,
    )
