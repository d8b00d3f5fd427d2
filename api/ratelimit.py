"""Fixed-window limits on `/query`, per user and per client IP, shared by every API process via Redis."""

import logging
import time

from redis.asyncio import Redis
from redis.exceptions import RedisError

from api.errors import ApiError
from shared.stream import StreamNames

logger = logging.getLogger(__name__)

_WINDOW_S = 60


class RateLimiter:
    def __init__(self, redis: Redis, names: StreamNames, per_minute: int) -> None:
        self._redis = redis
        self._names = names
        self._per_minute = per_minute

    async def check(self, user_id: str, client_ip: str) -> None:
        """Raise 429 once either counter passes the limit in the current minute."""
        if self._per_minute <= 0:
            return
        window = int(time.time()) // _WINDOW_S
        keys = [self._names.rate_limit_key(scope, ident, window) for scope, ident in (("user", user_id), ("ip", client_ip))]
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.incr(key)
                    pipe.expire(key, _WINDOW_S * 2)
                counts = (await pipe.execute())[::2]
        except (RedisError, OSError):
            # Redis down: the LLM call is still bounded by its timeout; do not fail the user.
            logger.warning("rate limiter unavailable; allowing request")
            return
        if max(counts) > self._per_minute:
            retry_after = _WINDOW_S - int(time.time()) % _WINDOW_S
            raise ApiError(
                429,
                f"too many queries: the limit is {self._per_minute} per minute per user and per IP",
                headers={"Retry-After": str(retry_after)},
            )
