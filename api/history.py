"""Earlier turns of a session, kept in Redis with a TTL so /query never reads MongoDB.

One list per (user_id, session_id) (`StreamNames.session_key`): keyed by both, so nobody reads
another participant's conversation by sending their session_id. Each entry is one exchange,
`{"question", "answer"}`, trimmed to the most turns any condition sends and expiring
SESSION_TTL_S after the last one. History is context, not data: if Redis fails, the query is
answered without it (the exchange itself is logged through the stream as always).
"""

import logging

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.settings import Settings
from shared.stream import StreamNames

logger = logging.getLogger(__name__)

_REDIS_ERRORS = (RedisError, OSError, TimeoutError)


class SessionHistory:
    def __init__(self, redis: Redis, names: StreamNames, settings: Settings, max_turns: int | None = None) -> None:
        """`max_turns`: the most any condition sends (`Experiments.max_history_turns`); 0 stores nothing."""
        self._redis = redis
        self._names = names
        self._ttl_s = settings.SESSION_TTL_S
        self._max_turns = settings.SESSION_HISTORY_TURNS if max_turns is None else max_turns

    async def load(self, user_id: str, session_id: str | None, turns: int) -> list[dict]:
        """The last `turns` exchanges as alternating user/assistant messages, oldest first."""
        if not turns or not session_id or not user_id:
            return []  # history off, or nothing to key it by: no Redis call
        key = self._names.session_key(user_id, session_id)
        try:
            entries = await self._redis.lrange(key, -turns, -1)
        except _REDIS_ERRORS as exc:
            logger.warning("session history unavailable; answering without it",
                           extra={"user_id": user_id, "error": type(exc).__name__})
            return []
        return [message for entry in entries for message in _messages(entry, key)]

    async def append(self, user_id: str, session_id: str | None, question: str, answer: str) -> None:
        """Add one exchange, keep the last `max_turns`, and restart the session's TTL (one round trip)."""
        if not self._max_turns or not session_id or not user_id:
            return
        key = self._names.session_key(user_id, session_id)
        turn = orjson.dumps({"question": question, "answer": answer})
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.rpush(key, turn).ltrim(key, -self._max_turns, -1).expire(key, self._ttl_s)
                await pipe.execute()
        except _REDIS_ERRORS as exc:
            logger.warning("session history not saved", extra={"user_id": user_id, "error": type(exc).__name__})


def _messages(entry: bytes, key: str) -> list[dict]:
    try:
        turn = orjson.loads(entry)
        return [{"role": "user", "content": turn["question"]}, {"role": "assistant", "content": turn["answer"]}]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        logger.warning("unreadable session turn skipped", extra={"key": key})
        return []
