"""Earlier turns of a session, kept in Redis with a TTL so /query never reads MongoDB."""

from redis.asyncio import Redis

from shared.settings import Settings
from shared.stream import StreamNames


class SessionHistory:
    def __init__(self, redis: Redis, names: StreamNames, settings: Settings) -> None:
        self._redis = redis
        self._names = names
        self._ttl_s = settings.SESSION_TTL_S

    async def load(self, session_id: str | None, turns: int) -> list[dict]:
        """The last `turns` exchanges as chat messages, oldest first."""
        # SKELETON
        return []

    async def append(self, session_id: str | None, question: str, answer: str) -> None:
        # SKELETON
        return None
