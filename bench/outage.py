"""(f) MongoDB stopped for 10 s in the middle of a load run: what share of requests still got a 2xx."""

import threading
import time

from bench.load import LoadResult, run_wrk
from bench.stack import BenchStack

CLIENT_TIMEOUT_S = 2  # a 2xx slower than this counts as a failure: a closing page does not wait


def run_with_mongo_outage(stack: BenchStack, url: str, body: bytes, connections: int = 32,
                          before_s: float = 5, outage_s: float = 10, after_s: float = 5) -> tuple[LoadResult, float]:
    """Returns the load result and how long MongoDB took to come back after its restart began."""
    restart_s: list[float] = []

    def break_mongo() -> None:
        time.sleep(before_s)
        stack.mongo.stop()
        time.sleep(outage_s)
        started = time.monotonic()
        stack.start_mongo()
        restart_s.append(time.monotonic() - started)

    breaker = threading.Thread(target=break_mongo, name="mongo-outage")
    breaker.start()
    try:
        result = run_wrk(url, body, connections, int(before_s + outage_s + after_s), timeout_s=CLIENT_TIMEOUT_S)
    finally:
        breaker.join(timeout=120)
    return result, restart_s[0] if restart_s else float("nan")
