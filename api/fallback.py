"""Tracks the Redis-down mode of ingest, so an outage is logged when it starts and ends, not per request.

While Redis is down, one request at a time tries it (the probe), and the others write to MongoDB at
once. A hung Redis answers nothing until REDIS_TIMEOUT_MS has passed: without the probe, every
request waited that long before writing to MongoDB (fault scenario s8).
"""

import contextlib
import logging
import time
from collections.abc import Iterator

from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


class RedisFallback:
    def __init__(self) -> None:
        self._down_since: float | None = None
        self._writes = 0
        self._probing = False

    @property
    def is_active(self) -> bool:
        return self._down_since is not None

    @property
    def worth_trying(self) -> bool:
        """False while Redis is down and another request is already finding out whether it is back."""
        return self._down_since is None or not self._probing

    @contextlib.contextmanager
    def attempt(self) -> Iterator[None]:
        """Around one try of Redis: records how it went, and re-raises a RedisError or OSError."""
        probing = self._down_since is not None
        self._probing |= probing
        try:
            yield
        except (RedisError, OSError) as exc:
            self.record_failure(exc)
            raise
        else:
            self.record_success()
        finally:
            if probing:  # also when the request was cancelled: the next one probes
                self._probing = False

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
