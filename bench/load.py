"""Runs `wrk` with bench/post.lua against 127.0.0.1 and returns what it measured."""

import json
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

LUA = Path(__file__).with_name("post.lua")


@dataclass(frozen=True)
class LoadResult:
    requests: int  # answers received
    seconds: float
    ok: int  # 2xx answers
    other: int  # non-2xx answers
    timeouts: int  # answers slower than the timeout (wrk drops them from the latency histogram)
    socket_errors: int  # connect, read and write errors: no answer at all
    p50_ms: float
    p99_ms: float

    @property
    def ok_per_s(self) -> float:
        return self.ok / self.seconds

    @property
    def share_2xx(self) -> float:
        """2xx answers within the timeout, over everything sent; a 2xx that came too late counts as a failure."""
        attempts = self.requests + self.socket_errors
        return max(self.ok - self.timeouts, 0) / attempts if attempts else 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "ok_per_s": round(self.ok_per_s, 1), "share_2xx": round(self.share_2xx, 5)}


def run_wrk(url: str, body: bytes, connections: int, seconds: int, content_type: str = "application/json",
            threads: int = 2, timeout_s: int = 10) -> LoadResult:
    with tempfile.NamedTemporaryFile(suffix=".body") as body_file:
        body_file.write(body)
        body_file.flush()
        command = ["wrk", f"-t{min(threads, connections)}", f"-c{connections}", f"-d{seconds}s", f"-T{timeout_s}s",
                   "-s", str(LUA), url, "--", body_file.name, content_type]
        output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 120).stdout
    line = next(line for line in output.splitlines() if line.startswith("BENCH_JSON "))
    raw = json.loads(line.removeprefix("BENCH_JSON "))
    errors = raw["errors"]
    return LoadResult(
        requests=raw["requests"], seconds=raw["duration_us"] / 1e6, ok=raw["ok"], other=raw["other"],
        timeouts=errors["timeout"], socket_errors=errors["connect"] + errors["read"] + errors["write"],
        p50_ms=raw["latency_us"]["p50"] / 1000, p99_ms=raw["latency_us"]["p99"] / 1000,
    )


def best_of(results: list[LoadResult]) -> LoadResult:
    """The round with the most 2xx per second: on a shared machine, the one least disturbed by others."""
    return max(results, key=lambda result: result.ok_per_s)
