"""Session history in a real Redis: order, cap, TTL, per-participant keys, and Redis failures."""

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from api.history import SessionHistory
from scripts.devstack import free_port
from shared.settings import Settings
from tests.helpers import names_for


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(settings.REDIS_URL)
    yield client
    await client.aclose()


def _turns(*numbers: int) -> list[dict]:
    return [message for n in numbers for message in (
        {"role": "user", "content": f"question {n}"}, {"role": "assistant", "content": f"answer {n}"})]


async def _append(history: SessionHistory, count: int, user_id: str = "u1", session_id: str = "s1") -> None:
    for n in range(1, count + 1):
        await history.append(user_id, session_id, f"question {n}", f"answer {n}")


async def test_load_gives_the_last_turns_oldest_first(redis: Redis, settings: Settings) -> None:
    history = SessionHistory(redis, names_for(settings), settings)
    await _append(history, 4)

    assert await history.load("u1", "s1", 2) == _turns(3, 4)
    assert await history.load("u1", "s1", 10) == _turns(1, 2, 3, 4)


async def test_the_list_is_capped_at_the_most_turns_any_condition_sends(redis: Redis, settings: Settings) -> None:
    history = SessionHistory(redis, names_for(settings), settings, max_turns=3)
    await _append(history, 5)

    assert await redis.llen(names_for(settings).session_key("u1", "s1")) == 3
    assert await history.load("u1", "s1", 10) == _turns(3, 4, 5)


async def test_every_append_restarts_the_ttl_and_an_expired_session_is_empty(
    redis: Redis, settings: Settings,
) -> None:
    history = SessionHistory(redis, names_for(settings), settings)
    key = names_for(settings).session_key("u1", "s1")
    await _append(history, 1)
    assert 0 < await redis.ttl(key) <= settings.SESSION_TTL_S
    await redis.expire(key, 100)

    await _append(history, 1)
    assert await redis.ttl(key) > 100

    await redis.pexpire(key, 1)
    for _ in range(200):  # bounded: Redis expires the key within milliseconds
        if not await redis.exists(key):
            break
        await asyncio.sleep(0.01)
    assert await history.load("u1", "s1", 5) == []


async def test_a_session_belongs_to_its_participant(redis: Redis, settings: Settings) -> None:
    history = SessionHistory(redis, names_for(settings), settings)
    await _append(history, 2, user_id="alice", session_id="shared-id")

    assert await history.load("mallory", "shared-id", 5) == []
    assert await history.load("alice", "shared-id", 5) == _turns(1, 2)
    # The length prefix keeps ("a:b", "c") and ("a", "b:c") apart.
    await history.append("a:b", "c", "question 1", "answer 1")
    assert await history.load("a", "b:c", 5) == []


async def test_history_off_makes_no_redis_call(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    history = SessionHistory(dead, names_for(settings), settings, max_turns=0)

    with caplog.at_level(logging.WARNING, logger="api.history"):
        assert await history.load("u1", "s1", 0) == []
        assert await history.load("u1", None, 5) == []
        await history.append("u1", "s1", "question", "answer")  # max_turns 0: nothing is stored

    assert caplog.records == []  # a Redis call would have failed and logged
    await dead.aclose()


async def test_redis_down_answers_without_history(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    history = SessionHistory(dead, names_for(settings), settings)

    with caplog.at_level(logging.WARNING, logger="api.history"):
        assert await history.load("u1", "s1", 5) == []
        await history.append("u1", "s1", "question", "answer")

    assert [r.getMessage() for r in caplog.records] == [
        "session history unavailable; answering without it", "session history not saved"]
    await dead.aclose()


async def test_an_unreadable_turn_is_skipped(redis: Redis, settings: Settings) -> None:
    history = SessionHistory(redis, names_for(settings), settings)
    await _append(history, 1)
    await redis.rpush(names_for(settings).session_key("u1", "s1"), b"not json")
    await history.append("u1", "s1", "question 2", "answer 2")

    assert await history.load("u1", "s1", 3) == _turns(1, 2)
