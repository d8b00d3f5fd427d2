"""Tracks the Redis-down mode of ingest, so an outage is logged when it starts and ends, not per request."""

import logging
import time

logger = logging.getLogger(__name__)


class RedisFallback:
    def __init__(self) -> None:
        self._down_since: float | None = None
        self._writes = 0

    @property
    def is_active(self) -> bool:
        return self._down_since is not None

    def record_failure(self, error: BaseException) -> None:
        """Redis refused a record; the caller now writes it to MongoDB directly."""
        if self._down_since is None:
            self._down_since = time.monotonic()
            logger.warning("redis unavailable; writing records to MongoDB directly until it returns",
                           extra={"error": f"{type(error).__name__}: {error}"[:300]})
        self._writes += 1

    def record_success(self) -> None:
        if self._down_since is not None:
            logger.warning("redis available again; queueing resumed",
                           extra={"direct_writes": self._writes,
                                  "down_s": round(time.monotonic() - self._down_since, 1)})
            self._down_since = None
            self._writes = 0
