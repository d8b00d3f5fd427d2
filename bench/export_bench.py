"""Export benchmark: records/s of GET /export_data in each format against a raw PyMongo cursor over the
same documents, and the API process's RSS while it streams them all.

`python -m bench.export_bench [--records N]` starts its own redis-server and SecantusDB under
.data/bench-export (kept, so a second run reuses the seeded data); bench/run.py calls
`run_export_bench(mongo_uri=..., redis_url=...)` to use its own.
"""

import argparse
import asyncio
import logging
import secrets
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
from pymongo import MongoClient

from bench.export_seed import ensure_seeded
from scripts.devstack import Service, free_port, redis_service, secantus_service, wait_mongo_ready, wait_redis_ready
from shared.export import SORT
from shared.records import COLLECTIONS

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "bench_export"
FORMATS = ("json", "ndjson", "csv")
TARGET_RATIO = 0.5
RSS_BUDGET_MB = 50
_TIMEOUT = httpx.Timeout(30, read=900)  # SecantusDB may think for minutes before a large sorted cursor's first batch


async def run_export_bench(*, mongo_uri: str | None = None, redis_url: str | None = None,
                           records: int = 1_000_000, work_dir: Path | None = None) -> dict[str, Any]:
    """Seeds (or reuses) `records` documents, then measures. Blocking work runs in a thread."""
    return await asyncio.to_thread(_run, mongo_uri, redis_url, records, work_dir or REPO_ROOT / ".data/bench-export")


def _run(mongo_uri: str | None, redis_url: str | None, records: int, work_dir: Path) -> dict[str, Any]:
    own: list[Service] = []
    try:
        if redis_url is None:
            own.append(redis_service(free_port(), work_dir / "redis").start())
            redis_url = f"redis://127.0.0.1:{own[-1].port}/0"
            wait_redis_ready(redis_url)
        if mongo_uri is None:
            own.append(secantus_service(free_port(), work_dir / "mongo").start())
            mongo_uri = f"mongodb://127.0.0.1:{own[-1].port}/?directConnection=true"
            wait_mongo_ready(mongo_uri)
        seed_s = ensure_seeded(mongo_uri, DB_NAME, records)
        floor = measure_floor(mongo_uri)
        api_key = secrets.token_hex(16)
        api = _api_service(mongo_uri, redis_url, api_key, work_dir).start(ready_timeout_s=180)
        own.append(api)
        formats = {fmt: measure_format(api, api_key, fmt, records) for fmt in FORMATS}
    finally:
        for service in reversed(own):
            service.stop()
    for result in formats.values():
        result["ratio_to_floor"] = round(result["records_per_s"] / floor["records_per_s"], 3)
        result["streaming_ratio"] = round(result["streaming_records_per_s"] / floor["streaming_records_per_s"], 3)
    return {"records": records, "seed_s": round(seed_s, 1), "floor": floor, "formats": formats,
            "target_ratio": TARGET_RATIO, "rss_budget_mb": RSS_BUDGET_MB}


def measure_floor(mongo_uri: str) -> dict[str, Any]:
    """The same documents through bare PyMongo cursors, in the same index order; nothing else."""
    with MongoClient(mongo_uri, connectTimeoutMS=900_000, serverSelectionTimeoutMS=900_000) as client:
        db = client[DB_NAME]
        started, count, first_s = time.perf_counter(), 0, 0.0
        for name in COLLECTIONS.values():
            opened = time.perf_counter()
            cursor = db[name].find({}, sort=SORT, batch_size=500)
            if next(cursor, None) is not None:
                count += 1
            first_s += time.perf_counter() - opened
            for _ in cursor:
                count += 1
        seconds = time.perf_counter() - started
    return _rates(count, seconds, first_s)


def measure_format(api: Service, api_key: str, fmt: str, records: int) -> dict[str, Any]:
    sampler = RssSampler(api.pid)
    url = f"http://127.0.0.1:{api.port}/export_data"
    headers = {"Authorization": f"Bearer {api_key}", "Accept-Encoding": "identity"}
    newlines = size = 0
    first_s = None
    with sampler:
        started = time.perf_counter()
        with httpx.stream("GET", url, params={"format": fmt}, headers=headers, timeout=_TIMEOUT) as response:
            response.raise_for_status()
            for chunk in response.iter_raw(256 * 1024):
                first_s = first_s or time.perf_counter() - started
                newlines += chunk.count(b"\n")
                size += len(chunk)
        seconds = time.perf_counter() - started
    count = newlines - (fmt == "csv")  # one line per record (bench data holds no newlines); CSV adds a header
    return {**_rates(count, seconds, first_s or 0.0), "complete": count == records,
            "mb_per_s": round(size / seconds / 1e6, 1), "rss_before_mb": sampler.before_mb,
            "rss_peak_mb": sampler.peak_mb, "rss_rise_mb": round(sampler.peak_mb - sampler.before_mb, 1)}


def _rates(count: int, seconds: float, first_s: float) -> dict[str, Any]:
    """Overall rate, and the rate after the first record (SecantusDB takes long to open a big sorted cursor)."""
    return {"records": count, "seconds": round(seconds, 2), "first_record_s": round(first_s, 2),
            "records_per_s": round(count / seconds), "streaming_records_per_s": round(count / (seconds - first_s))}


class RssSampler:
    """Peak resident memory of a process during a block: the kernel's high-water mark, reset on entry
    (/proc/PID/clear_refs), cross-checked by sampling VmRSS every 20 ms."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.before_mb = self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> "RssSampler":
        self.before_mb = self._read("VmRSS")
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        except OSError:
            pass  # not permitted: the sampled peak still counts
        self.peak_mb = self.before_mb
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = round(max(self.peak_mb, self._read("VmHWM")), 1)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak_mb = max(self.peak_mb, self._read("VmRSS"))

    def _read(self, field: str) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return round(int(line.split()[1]) / 1024, 1)
        return 0.0


def _api_service(mongo_uri: str, redis_url: str, api_key: str, work_dir: Path) -> Service:
    port = free_port()
    env = {"MONGODB_URI": mongo_uri, "MONGO_DB": DB_NAME, "REDIS_URL": redis_url, "STREAM_PREFIX": "bench-export",
           "ADMIN_API_KEY": api_key, "LLM_MOCK": "true", "LOG_LEVEL": "WARNING", "API_WORKERS": "1",
           "API_PORT": str(port), "PYTHONPATH": str(REPO_ROOT), "LITELLM_LOCAL_MODEL_COST_MAP": "True",
           # SecantusDB answers nothing while it builds a large result set; a 5 s heartbeat would give up.
           "MONGO_TIMEOUT_MS": "900000"}
    return Service("api", [sys.executable, "-m", "api"], port, log_path=work_dir / "api.log", env=env)


def format_table(result: dict[str, Any]) -> str:
    floor = result["floor"]
    lines = [f"export of {result['records']:,} records (seeded in {result['seed_s']} s; 0 = reused)",
             f"{'path':<24}{'records/s':>10}{'ratio':>7}{'1st rec s':>10}{'after 1st':>10}{'ratio':>7}"
             f"{'MB/s':>6}{'RSS MB':>8}{'peak':>7}{'rise':>6}",
             f"{'raw PyMongo cursor':<24}{floor['records_per_s']:>10,}{1:>7.3f}{floor['first_record_s']:>10}"
             f"{floor['streaming_records_per_s']:>10,}{1:>7.3f}"]
    for fmt, r in result["formats"].items():
        lines.append(f"{'GET /export_data ' + fmt:<24}{r['records_per_s']:>10,}{r['ratio_to_floor']:>7.3f}"
                     f"{r['first_record_s']:>10}{r['streaming_records_per_s']:>10,}{r['streaming_ratio']:>7.3f}"
                     f"{r['mb_per_s']:>6}{r['rss_before_mb']:>8}{r['rss_peak_mb']:>7}{r['rss_rise_mb']:>6}"
                     + ("" if r["complete"] else f"  INCOMPLETE: {r['records']:,}"))
    lines.append(f"targets: ratio >= {TARGET_RATIO}, RSS rise <= {RSS_BUDGET_MB} MB")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.export_bench")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--mongo-uri")
    parser.add_argument("--redis-url")
    parser.add_argument("--work-dir", type=Path, help="where own services keep data (default .data/bench-export)")
    parser.add_argument("--save", type=Path, default=REPO_ROOT / "bench/results/export.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    result = asyncio.run(run_export_bench(mongo_uri=args.mongo_uri, redis_url=args.redis_url, records=args.records,
                                             work_dir=args.work_dir))
    print(format_table(result))
    args.save.parent.mkdir(parents=True, exist_ok=True)
    args.save.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
