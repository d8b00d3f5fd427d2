"""Fixed-window limits on `/query`, per user and per client IP, shared by every API process via Redis.

Two limits because they stop different things: the per-user one a runaway front-end loop, the
per-IP one an abuser inventing user ids. The IP limit is higher since a lab often shares one NAT.
Loopback clients (this machine: load scripts, simulations) are not IP-limited; behind a reverse proxy on
the same host, uvicorn takes the client address from X-Forwarded-For (its proxy_headers default).
"""

import ipaddress
import logging
import time

from redis.asyncio import Redis
from redis.exceptions import RedisError

from api.errors import ApiError
from shared.stream import StreamNames

logger = logging.getLogger(__name__)

WINDOW_S = 60


class RateLimiter:
    def __init__(self, redis: Redis, names: StreamNames, per_user_per_min: int, per_ip_per_min: int) -> None:
        self._redis = redis
        self._names = names
        self._limits = {"user": per_user_per_min, "ip": per_ip_per_min}

    async def check(self, user_id: str, client_ip: str) -> None:
        """Count this call; raise 429 with Retry-After once either counter passes its limit this minute."""
        scopes = {scope: ident for scope, ident in (("user", user_id), ("ip", client_ip)) if self._limits[scope] > 0}
        if _is_loopback(client_ip):
            scopes.pop("ip", None)
        if not scopes:
            return
        now = time.time()
        window = int(now) // WINDOW_S
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for scope, ident in scopes.items():
                    key = self._names.rate_limit_key(scope, ident, window)
                    pipe.incr(key)
                    pipe.expire(key, WINDOW_S * 2)
                counts = (await pipe.execute())[::2]
        except (RedisError, OSError):
            # Redis down: the LLM call is still bounded by its timeout; do not fail the user.
            logger.warning("rate limiter unavailable; allowing request")
            return
        for scope, count in zip(scopes, counts, strict=True):
            if count > self._limits[scope]:
                raise self._limited(scope, now)

    def _limited(self, scope: str, now: float) -> ApiError:
        who = "user" if scope == "user" else "IP address"
        retry_after_s = WINDOW_S - int(now) % WINDOW_S
        logger.info("query rate limited", extra={"scope": scope, "retry_after_s": retry_after_s})
        return ApiError(
            429,
            f"too many queries: the limit is {self._limits[scope]} per minute per {who}; retry after {retry_after_s} s",
            headers={"Retry-After": str(retry_after_s)},
            retry_after_s=retry_after_s,
        )


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # "testclient", a unix socket path
        return False
