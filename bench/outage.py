"""(f) MongoDB stopped for 10 s in the middle of 20 s of open-loop load: what share of events got a 2xx."""

import asyncio
import threading
import time

from bench.openloop import OpenLoopResult, run_open_loop
from bench.stack import BenchStack

CLIENT_TIMEOUT_S = 2  # a 2xx slower than this counts as a failure: a closing page does not wait
RATE_PER_S = 200  # what the naive app sustains here with MongoDB up, so its failures are the outage's


def run_with_mongo_outage(stack: BenchStack, url: str, user_id: str, before_s: float = 5, outage_s: float = 10,
                          after_s: float = 5) -> tuple[OpenLoopResult, float]:
    """Returns the load result and how long MongoDB took to come back after its restart began."""
    restart_s: list[float] = []

    def break_mongo() -> None:
        time.sleep(before_s)
        stack.mongo.stop()
        time.sleep(outage_s)
        started = time.monotonic()
        stack.start_mongo()
        restart_s.append(time.monotonic() - started)

    def body_for(i: int) -> bytes:
        return b'{"user_id":"%s","event_type":"click","extra_data":{"i":%d}}' % (user_id.encode(), i)

    breaker = threading.Thread(target=break_mongo, name="mongo-outage")
    breaker.start()
    try:
        result = asyncio.run(run_open_loop(url, body_for, RATE_PER_S, before_s + outage_s + after_s,
                                           timeout_s=CLIENT_TIMEOUT_S))
    finally:
        breaker.join(timeout=120)
    return result, restart_s[0] if restart_s else float("nan")
