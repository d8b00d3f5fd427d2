"""`make bench` (`python -m bench.run`): every figure measured in one run, side by side, on this machine.

Starts its own redis-server, SecantusDB, API, worker, floor and naive apps on free ports, loads them
with `wrk` on 127.0.0.1, prints one table and saves bench/results/latest.json. Alternating rounds
(ours, baseline, ours, baseline) and best-of-rounds keep other load on the machine from deciding a ratio.
"""

import argparse
import asyncio
import datetime
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis
from pymongo import MongoClient

from bench.drain import measure_drain
from bench.lag import measure_lag
from bench.load import LoadResult, best_of, run_wrk
from bench.outage import run_with_mongo_outage
from bench.profile import start_profile, summarise
from bench.report import format_table, save_json
from bench.stack import BenchStack, RssSampler, process_tree
from shared.settings import Settings

RESULTS_DIR = Path(__file__).with_name("results")
SEED_EVENT = {"user_id": "user_123", "session_id": "session_abc", "event_type": "click", "query": "best hiking boots",
              "target_url": "https://example.com/boots", "page_url": "https://app.example.com/chat",
              "extra_data": {"position": 2, "arm": "B"}}
SINGLE = json.dumps(SEED_EVENT).encode()
BATCH = json.dumps({"events": [{**SEED_EVENT, "extra_data": {"i": i}} for i in range(100)]}).encode()
FLOOR_STREAM = "floor:records"
OUTAGE_CONNECTIONS = 32


class Bench:
    def __init__(self, stack: BenchStack, args: argparse.Namespace) -> None:
        self.stack = stack
        self.args = args
        self.redis = redis.Redis.from_url(stack.redis_url)
        self.mongo = MongoClient(stack.mongo_uri)
        self.results: dict[str, Any] = {}
        self.worker = None

    def run(self) -> dict[str, Any]:
        stack = self.stack
        self.api, self.api_url = stack.start_app("api", "api")
        _, self.floor_url = stack.start_app("floor", "bench.floor_app", FLOOR_STREAM=FLOOR_STREAM)
        _, self.naive_url = stack.start_app("naive", "bench.naive_app", MONGO_DB="naive")
        for url in (self.api_url, self.floor_url):
            run_wrk(f"{url}/log_event", SINGLE, 32, 2)  # warm-up: imports, connections, caches
        self.clean()
        self.measure_ingest()
        self.measure_batch()
        if not self.args.no_profile:
            self.profile_api()
        self.start_worker()
        self.measure_against_naive()
        self.restart_worker_clean()
        self.results["drain"] = asyncio.run(measure_drain(stack, self.worker.pid, self.args.drain_records,
                                                          Settings(_env_file=None)))
        self.restart_worker_clean()
        self.measure_outage()
        self.restart_worker_clean()
        self.results["lag"] = asyncio.run(measure_lag(self.api_url, stack.redis_url, stack.names.records,
                                                      stack.mongo_uri, stack.db_name, seconds=self.args.lag_seconds))
        self.results["export"] = run_export_section(stack, self.api_url)
        return self.results

    def rounds(self, targets: dict[str, tuple[str, bytes]], connections: int) -> dict[str, LoadResult]:
        """Alternate the targets (name -> url, body) round by round; keep each one's best round."""
        runs: dict[str, list[LoadResult]] = {name: [] for name in targets}
        for _ in range(self.args.rounds):
            for name, (url, body) in targets.items():
                runs[name].append(run_wrk(url, body, connections, self.args.seconds))
                if self.worker is None:
                    self.clean()
        return {name: best_of(results) for name, results in runs.items()}

    def measure_ingest(self) -> None:
        """(a)+(b): the API and the floor, both with Redis only (no worker on either side)."""
        ingest = {}
        for connections in (32, 128):
            best = self.rounds({"ours": (f"{self.api_url}/log_event", SINGLE),
                                "floor": (f"{self.floor_url}/log_event", SINGLE)}, connections)
            ingest[connections] = {"ours": best["ours"].as_dict(), "floor": best["floor"].as_dict(),
                                   "ratio": ratio(best["ours"].ok_per_s, best["floor"].ok_per_s)}
        self.results["ingest"] = ingest

    def measure_batch(self) -> None:
        """(d): batches of 100 against single events, alternated, c=32, no worker."""
        best = self.rounds({"batch": (f"{self.api_url}/log_events", BATCH),
                            "single": (f"{self.api_url}/log_event", SINGLE)}, 32)
        events_per_s = best["batch"].ok_per_s * 100
        # Against the best single-event figure seen at c=32, here or in (a): the ratio is not flattered.
        single_per_s = max(best["single"].ok_per_s, self.results["ingest"][32]["ours"]["ok_per_s"])
        self.results["batch"] = {"requests": best["batch"].as_dict(), "events_per_s": round(events_per_s, 1),
                                 "single_per_s": round(single_per_s, 1), "ratio": ratio(events_per_s, single_per_s)}

    def profile_api(self) -> None:
        """py-spy on one uvicorn worker of the API under the c=128 load: where does its time go?"""
        worker_pid = uvicorn_workers(self.api.pid)[0]
        raw = RESULTS_DIR / "profile-api.txt"
        profiler = start_profile(worker_pid, self.args.seconds, raw)
        run_wrk(f"{self.api_url}/log_event", SINGLE, 128, self.args.seconds + 1)
        _, errors = profiler.communicate(timeout=60)
        self.clean()
        if profiler.returncode != 0:
            self.results["profile"] = {"error": errors.decode(errors="replace")[-500:]}
            return
        self.results["profile"] = {"raw": str(raw.relative_to(RESULTS_DIR.parent.parent)), **summarise(raw)}

    def measure_against_naive(self) -> None:
        """(c)+(h): the whole system (the worker drains meanwhile) against insert_one in the request."""
        naive = {}
        pids = {"api": self.api.pid, "worker": self.worker.pid}
        with RssSampler(pids) as rss:
            for connections in (32, 128):
                best = self.rounds({"ours": (f"{self.api_url}/log_event", SINGLE),
                                    "naive": (f"{self.naive_url}/log_event", SINGLE)}, connections)
                ours, base = best["ours"], best["naive"]
                naive[connections] = {"ours": ours.as_dict(), "naive": base.as_dict(),
                                      "throughput_ratio": ratio(ours.ok_per_s, base.ok_per_s),
                                      "p99_ratio": ratio(ours.p99_ms, base.p99_ms)}
        self.results["naive"] = naive
        self.results["rss_mb"] = {name: round(mb, 1) for name, mb in rss.peak_mb.items()}

    def measure_outage(self) -> None:
        """(f): MongoDB stopped for 10 s in the middle of 20 s of load, for ours then for the naive app."""
        events = self.mongo[self.stack.db_name]["events"]
        before = events.count_documents({})
        ours, ours_restart_s = run_with_mongo_outage(self.stack, f"{self.api_url}/log_event", SINGLE,
                                                     OUTAGE_CONNECTIONS)
        self.wait_backlog_empty(timeout_s=300)
        stored_after = events.count_documents({}) - before
        naive, naive_restart_s = run_with_mongo_outage(self.stack, f"{self.naive_url}/log_event", SINGLE,
                                                       OUTAGE_CONNECTIONS)
        # wrk counts only answers it received: requests in flight when it stops were stored without
        # being counted, so between ok and ok + connections records is exact.
        self.results["outage"] = {"ours": ours.as_dict(), "naive": naive.as_dict(), "stored_after": stored_after,
                                  "connections": OUTAGE_CONNECTIONS,
                                  "mongo_restart_s": [round(ours_restart_s, 1), round(naive_restart_s, 1)]}

    # --- housekeeping between phases ---

    def start_worker(self) -> None:
        self.worker = self.stack.start_worker()

    def restart_worker_clean(self) -> None:
        """A fresh stream, empty collections with their indexes, and a new worker: each phase starts equal."""
        if self.worker is not None:
            self.stack.stop(self.worker)
            self.worker = None
        self.clean()
        names = self.stack.names
        self.redis.delete(names.records)
        self.redis.xgroup_create(names.records, names.group, id="0", mkstream=True)
        for db in (self.stack.db_name, "naive"):
            self.mongo[db]["events"].drop()
        self.start_worker()

    def clean(self) -> None:
        """Drop what the API and the floor queued while no worker runs, so Redis stays small."""
        self.redis.xtrim(self.stack.names.records, maxlen=0)
        self.redis.delete(FLOOR_STREAM)

    def wait_backlog_empty(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while self.redis.xlen(self.stack.names.records) > 0:
            if time.monotonic() > deadline:
                raise TimeoutError(f"backlog not drained after {timeout_s} s")
            time.sleep(0.2)


def ratio(ours: float, baseline: float) -> float:
    """ours / baseline; infinite when the baseline managed nothing (shown as such, never a crash)."""
    return round(ours / baseline, 3) if baseline else float("inf")


def uvicorn_workers(pid: int) -> list[int]:
    """The uvicorn worker processes under a `python -m api` supervisor (spawned by multiprocessing)."""
    children = [p for p in process_tree(pid)[1:] if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]
    return children or [pid]


def run_export_section(stack: BenchStack, api_url: str) -> dict | None:
    """The export benchmark, if bench/export_bench.py exists (it is another issue's)."""
    try:
        from bench.export_bench import run_export_bench
    except ModuleNotFoundError as exc:
        if exc.name == "bench.export_bench":
            return None
        raise
    return asyncio.run(run_export_bench(mongo_uri=stack.mongo_uri, api_url=api_url, admin_key=stack.admin_key))


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="length of one wrk round (default 5)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per comparison (default 2)")
    parser.add_argument("--drain-records", type=int, default=10_000, help="records for the drain test")
    parser.add_argument("--lag-seconds", type=int, default=15, help="length of the 1000 events/s lag test")
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profile of the API")
    parser.add_argument("--keep", action="store_true", help="keep the data and logs folder (for debugging)")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    started = time.monotonic()
    api_workers = os.cpu_count() or 1
    meta: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"), "cpus": os.cpu_count(),
        "api_workers": api_workers, "python": platform.python_version(), "machine": platform.machine(),
        "load_before": os.getloadavg()[0], "mongodb": "SecantusDB (wire-protocol MongoDB in Python), local",
        "wrk_round_s": args.seconds, "rounds": args.rounds,
    }
    root = Path(tempfile.mkdtemp(prefix="llmlog-bench-"))
    stack = BenchStack(root, api_workers)
    try:
        stack.start_stores()
        results = Bench(stack, args).run()
    finally:
        stack.stop_all()
        if args.keep:
            logging.warning("kept %s", root)
        else:
            shutil.rmtree(root, ignore_errors=True)
    meta.update(load_after=os.getloadavg()[0], runtime_s=round(time.monotonic() - started, 1))
    results = {"meta": meta, **results}
    save_json(results, RESULTS_DIR / "latest.json")
    sys.stdout.write(format_table(results) + "\n")
    if profile := results.get("profile"):
        sys.stdout.write("\nAPI profile (py-spy, one uvicorn worker, c=128), self time by layer: "
                         + json.dumps(profile.get("self_by_layer_pct", profile)) + "\n")
    sys.stdout.write(f"\nsaved {RESULTS_DIR / 'latest.json'}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
