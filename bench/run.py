"""`make bench` (`python -m bench.run`): every figure measured in one run, side by side, on this machine.

Starts its own redis-server, SecantusDB, API, worker, floor and naive apps on free ports, loads them
with `wrk` on 127.0.0.1, prints one table and saves bench/results/latest.json. Alternating rounds
(ours, baseline, ours, baseline) and ratios taken pair by pair keep other load on the machine from
deciding a ratio.
"""

import argparse
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

from bench.phases import RESULTS_DIR, Bench
from bench.report import format_table, save_json
from bench.stack import BenchStack


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=4, help="length of one wrk round (default 4)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per comparison (default 3)")
    parser.add_argument("--drain-records", type=int, default=6_000, help="records per drain round (2 rounds)")
    parser.add_argument("--lag-seconds", type=int, default=10, help="length of each lag test (1000/s, 250/s)")
    parser.add_argument("--export-records", type=int, default=100_000,
                        help="records for the export section (0 skips it; the issue's 1,000,000 takes ~10 min "
                             "to seed into SecantusDB: `python -m bench.export_bench --records 1000000`)")
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
    for key, load in (("profile", "/log_event c=128"), ("profile_batch", "/log_events x100 c=32")):
        if profile := results.get(key):
            sys.stdout.write(f"\nAPI profile (py-spy, one uvicorn worker, {load}), self time by layer: "
                             + json.dumps(profile.get("self_by_layer_pct", profile))
                             + "\n  our functions, time inside them: " + json.dumps(profile.get("ours_inclusive_pct", {}))
                             + "\n")
    sys.stdout.write(f"\nsaved {RESULTS_DIR / 'latest.json'}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
