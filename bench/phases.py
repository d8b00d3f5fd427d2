"""The phases of a bench run, in order, each measured side by side with its baseline."""

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any

import redis
from pymongo import MongoClient

from bench.drain import measure_drain, wait_worker_draining
from bench.lag import measure_lag
from bench.load import LoadResult, best_of, run_wrk
from bench.outage import run_with_mongo_outage
from bench.profile import start_profile, summarise
from bench.stack import BenchStack, RssSampler, process_tree
from shared.settings import Settings

RESULTS_DIR = Path(__file__).with_name("results")
SEED_EVENT = {"user_id": "user_123", "session_id": "session_abc", "event_type": "click", "query": "best hiking boots",
              "target_url": "https://example.com/boots", "page_url": "https://app.example.com/chat",
              "extra_data": {"position": 2, "arm": "B"}}
SINGLE = json.dumps(SEED_EVENT).encode()
BATCH = json.dumps({"events": [{**SEED_EVENT, "extra_data": {"i": i}} for i in range(100)]}).encode()
FLOOR_STREAM = "floor:records"


class Bench:
    def __init__(self, stack: BenchStack, args: argparse.Namespace) -> None:
        self.stack = stack
        self.args = args
        self.redis = redis.Redis.from_url(stack.redis_url)
        self.mongo = MongoClient(stack.mongo_uri)
        self.results: dict[str, Any] = {}
        self.worker = None
        self.db = stack.db_name

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
        self.restart_worker_clean("system")
        self.measure_against_naive()
        self.restart_worker_clean("drain")
        self.results["drain"] = asyncio.run(measure_drain(stack, self.worker.pid, self.db, self.args.drain_records,
                                                          Settings(_env_file=None)))
        self.restart_worker_clean("outage")
        self.measure_outage()
        for key, rate in (("lag", 1000), ("lag_250", 250)):  # the second shows what the pipeline adds when
            self.restart_worker_clean(key)                   # MongoDB is not near its capacity
            self.results[key] = asyncio.run(measure_lag(self.api_url, stack.redis_url, stack.names.records,
                                                        stack.mongo_uri, self.db, rate_per_s=rate,
                                                        seconds=self.args.lag_seconds))
        self.results["export"] = run_export_section(stack, self.args.export_records)
        return self.results

    def rounds(self, targets: dict[str, tuple[str, bytes]], connections: int) -> dict[str, list[LoadResult]]:
        """Alternate the targets (name -> url, body) round by round: round i of each ran under the
        same conditions, so ratios are taken pair by pair (see `paired_ratio`)."""
        runs: dict[str, list[LoadResult]] = {name: [] for name in targets}
        for _ in range(self.args.rounds):
            for name, (url, body) in targets.items():
                runs[name].append(run_wrk(url, body, connections, self.args.seconds))
                if self.worker is None:
                    self.clean()
        return runs

    def measure_ingest(self) -> None:
        """(a)+(b): the API and the floor, both with Redis only (no worker on either side)."""
        ingest = {}
        for connections in (32, 128):
            runs = self.rounds({"ours": (f"{self.api_url}/log_event", SINGLE),
                                "floor": (f"{self.floor_url}/log_event", SINGLE)}, connections)
            ingest[connections] = {"ours": best_of(runs["ours"]).as_dict(), "floor": best_of(runs["floor"]).as_dict(),
                                   "ratio": paired_ratio(runs["ours"], runs["floor"], "ok_per_s")}
        self.results["ingest"] = ingest

    def measure_batch(self) -> None:
        """(d): batches of 100 against single events, alternated, c=32, no worker."""
        runs = self.rounds({"batch": (f"{self.api_url}/log_events", BATCH),
                            "single": (f"{self.api_url}/log_event", SINGLE)}, 32)
        batch, single = best_of(runs["batch"]), best_of(runs["single"])
        self.results["batch"] = {"requests": batch.as_dict(), "events_per_s": round(batch.ok_per_s * 100, 1),
                                 "single_per_s": round(single.ok_per_s, 1),
                                 "ratio": round(100 * paired_ratio(runs["batch"], runs["single"], "ok_per_s"), 2)}

    def profile_api(self) -> None:
        """py-spy on one uvicorn worker of the API under load, single events at c=128 and batches at
        c=32: where does its time go?"""
        for key, path, body, connections in (("profile", "/log_event", SINGLE, 128),
                                             ("profile_batch", "/log_events", BATCH, 32)):
            self.clean()  # the earlier phases ran without a worker: under the watermark, or the profile is of 503s
            worker_pid = uvicorn_workers(self.api.pid)[0]
            raw = RESULTS_DIR / f"{key.replace('_', '-')}-api.txt"
            profiler = start_profile(worker_pid, self.args.seconds, raw)
            run_wrk(f"{self.api_url}{path}", body, connections, self.args.seconds + 1)
            _, errors = profiler.communicate(timeout=60)
            if profiler.returncode != 0:
                self.results[key] = {"error": errors.decode(errors="replace")[-500:]}
                continue
            self.results[key] = {"raw": str(raw.relative_to(RESULTS_DIR.parent.parent)), **summarise(raw)}
        self.clean()

    def measure_against_naive(self) -> None:
        """(c)+(h): the whole system (the worker drains meanwhile) against insert_one in the request."""
        naive = {}
        pids = {"api": self.api.pid, "worker": self.worker.pid}
        with RssSampler(pids) as rss:
            for connections in (32, 128):
                runs = self.rounds({"ours": (f"{self.api_url}/log_event", SINGLE),
                                    "naive": (f"{self.naive_url}/log_event", SINGLE)}, connections)
                naive[connections] = {"ours": best_of(runs["ours"]).as_dict(),
                                      "naive": best_of(runs["naive"]).as_dict(),
                                      "throughput_ratio": paired_ratio(runs["ours"], runs["naive"], "ok_per_s"),
                                      "p99_ratio": paired_ratio(runs["ours"], runs["naive"], "p99_ms")}
        self.results["naive"] = naive
        self.results["rss_mb"] = {name: round(mb, 1) for name, mb in rss.peak_mb.items()}

    def measure_outage(self) -> None:
        """(f): MongoDB stopped for 10 s in the middle of 20 s of open-loop load, for ours then the naive app."""
        ours, ours_restart_s = run_with_mongo_outage(self.stack, f"{self.api_url}/log_event", "outage-ours")
        self.wait_backlog_empty(timeout_s=300)
        stored = self.mongo[self.db]["events"].count_documents({"user_id": "outage-ours"})
        stored_ids = len(set(ours.ids))
        naive, naive_restart_s = run_with_mongo_outage(self.stack, f"{self.naive_url}/log_event", "outage-naive")
        self.results["outage"] = {"ours": ours.as_dict(), "naive": naive.as_dict(), "stored": stored,
                                  "distinct_ids": stored_ids,
                                  "mongo_restart_s": [round(ours_restart_s, 1), round(naive_restart_s, 1)]}

    # --- housekeeping between phases ---

    def restart_worker_clean(self, phase: str) -> None:
        """A fresh stream, a fresh database and a new worker: each phase starts equal.

        A new database rather than dropped collections: SecantusDB takes minutes to drop a big one.
        """
        if self.worker is not None:
            self.stack.stop(self.worker)
            self.worker = None
        self.clean()
        names = self.stack.names
        self.redis.delete(names.records)
        self.redis.xgroup_create(names.records, names.group, id="0", mkstream=True)
        self.db = f"{self.stack.db_name}_{phase}"
        self.worker = self.stack.start_worker(MONGO_DB=self.db)
        asyncio.run(wait_worker_draining(self.stack))  # started and reading: timing starts now

    def clean(self) -> None:
        """Drop what the API and the floor queued while no worker runs, so Redis stays small."""
        # Exact: "~" trims whole nodes, at most 10,000 entries a call, and left the stream growing round by round.
        self.redis.xtrim(self.stack.names.records, maxlen=0, approximate=False)
        self.redis.delete(FLOOR_STREAM)

    def wait_backlog_empty(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while self.redis.xlen(self.stack.names.records) > 0:
            if time.monotonic() > deadline:
                raise TimeoutError(f"backlog not drained after {timeout_s} s")
            time.sleep(0.2)


def paired_ratio(ours: list[LoadResult], baselines: list[LoadResult], figure: str) -> float:
    """The median over rounds of ours/baseline, each pair measured back to back: other load on a shared
    machine comes and goes, and a pair sees the same conditions where best-of-each would not."""
    ratios = [getattr(a, figure) / getattr(b, figure) if getattr(b, figure) else float("inf")
              for a, b in zip(ours, baselines, strict=True)]
    return round(statistics.median(ratios), 3)


def uvicorn_workers(pid: int) -> list[int]:
    """The uvicorn worker processes under a `python -m api` supervisor (spawned by multiprocessing)."""
    children = [p for p in process_tree(pid)[1:] if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]
    return children or [pid]


def run_export_section(stack: BenchStack, records: int) -> dict | None:
    """Export records/s per format against a raw cursor, and the API's RSS, on this run's stores."""
    if records <= 0:
        return None
    from bench.export_bench import run_export_bench

    return asyncio.run(run_export_bench(mongo_uri=stack.mongo_uri, redis_url=stack.redis_url, records=records))
