"""Exponential backoff with a cap that logs a degraded state once, not once per retry."""

import asyncio
import contextlib
import logging
import random

logger = logging.getLogger(__name__)


class Backoff:
    def __init__(self, what: str, max_s: float, first_s: float = 0.1) -> None:
        self._what = what
        self._max_s = max_s
        self._first_s = first_s
        self._delay_s = first_s
        self._failures = 0

    @property
    def is_degraded(self) -> bool:
        return self._failures > 0

    async def wait(self, error: BaseException, stop: asyncio.Event) -> None:
        """Sleep before the next try, returning early if `stop` is set."""
        if self._failures == 0:
            logger.warning("%s unavailable; retrying with backoff", self._what,
                           extra={"error": f"{type(error).__name__}: {error}"[:300]})
        self._failures += 1
        delay = self._delay_s * random.uniform(0.5, 1.0)  # jitter keeps several workers from retrying in step
        self._delay_s = min(self._delay_s * 2, self._max_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)

    def reset(self) -> None:
        if self._failures:
            logger.warning("%s available again", self._what, extra={"failed_tries": self._failures})
        self._failures = 0
        self._delay_s = self._first_s
