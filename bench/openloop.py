"""An open-loop client: requests start on schedule whatever happened to earlier ones, as browser events do.

wrk is closed-loop: when the server stalls, wrk stops sending, and a 10 s outage costs it only the
few requests in flight. Events from real pages keep coming, so outages and lag are measured this way.
"""

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp

_HEADERS = {"Content-Type": "application/json"}


@dataclass
class OpenLoopResult:
    sent: int = 0
    ok: int = 0  # 2xx within the timeout
    failed: int = 0  # anything else: an error status, no answer, or an answer too late
    seconds: float = 0.0  # until the last answer
    send_seconds: float = 0.0  # until the last request was sent: the rate actually offered
    max_behind_ms: float = 0.0  # how late the client itself started a request (its own CPU starved)
    ids: list[str] = field(default_factory=list)  # of the 2xx answers that carried one

    @property
    def share_2xx(self) -> float:
        return self.ok / self.sent if self.sent else 0.0

    def as_dict(self) -> dict:
        return {"sent": self.sent, "ok": self.ok, "failed": self.failed, "seconds": round(self.seconds, 1),
                "achieved_per_s": round(self.sent / self.send_seconds, 1) if self.send_seconds else 0.0,
                "answered_per_s": round(self.sent / self.seconds, 1) if self.seconds else 0.0,
                "max_behind_ms": round(self.max_behind_ms, 1), "share_2xx": round(self.share_2xx, 5)}


async def run_open_loop(url: str, body_for: Callable[[int], bytes], rate_per_s: int, seconds: float,
                        timeout_s: float = 30, connections: int = 256,
                        on_ok: Callable[[dict], None] | None = None) -> OpenLoopResult:
    """POST `body_for(i)` to `url` at `rate_per_s` for `seconds`; `on_ok` gets each 2xx answer's JSON."""
    result = OpenLoopResult()

    async def send(session: aiohttp.ClientSession, i: int) -> None:
        try:
            async with session.post(url, data=body_for(i), headers=_HEADERS) as response:
                answer = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            result.failed += 1
            return
        if not 200 <= response.status < 300:
            result.failed += 1
            return
        result.ok += 1
        if isinstance(answer, dict) and "id" in answer:
            result.ids.append(answer["id"])
        if on_ok is not None:
            on_ok(answer)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections),
                                     timeout=aiohttp.ClientTimeout(total=timeout_s)) as session:
        started = time.monotonic()
        tasks = []
        count = int(rate_per_s * seconds)
        for i in range(count):
            delay = started + i / rate_per_s - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            result.max_behind_ms = max(result.max_behind_ms, -delay * 1000)
            tasks.append(asyncio.create_task(send(session, i)))
            result.sent += 1
        # The rate offered: `count` requests spread over (count - 1) intervals.
        result.send_seconds = (time.monotonic() - started) * count / max(count - 1, 1)
        await asyncio.gather(*tasks)
        result.seconds = time.monotonic() - started
    return result
