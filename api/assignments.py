"""The Redis record of who is in which arm, and the counts per arm, kept together by one atomic script.

Keys (shared/stream.py `experiment_key`): `assign` hash user_id -> arm; `participants` and `queries`
hashes arm -> count. Counting where the assignment is made costs no extra round trip and needs no
MongoDB scan, so GET /experiment answers in O(arms) however many records there are.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass

from redis.asyncio import Redis

from shared.stream import StreamNames

# Every API process runs this, so the first one to see a participant fixes their arm for all.
# An arm no longer in the file cannot be run: its participants move to the arm the hash gives now.
_ASSIGN_SCRIPT = """
local arm = redis.call('HGET', KEYS[1], ARGV[1])
local status = 'kept'
local previous = ''
if not arm then
  arm = ARGV[2]
  status = 'new'
  redis.call('HSET', KEYS[1], ARGV[1], arm)
  redis.call('HINCRBY', KEYS[2], arm, 1)
else
  local current = false
  for i = 4, #ARGV do
    if ARGV[i] == arm then current = true break end
  end
  if not current then
    previous = arm
    arm = ARGV[2]
    status = 'moved'
    redis.call('HSET', KEYS[1], ARGV[1], arm)
    redis.call('HINCRBY', KEYS[2], previous, -1)
    redis.call('HINCRBY', KEYS[2], arm, 1)
  end
end
if ARGV[3] == '1' then redis.call('HINCRBY', KEYS[3], arm, 1) end
return {arm, status, previous}
"""

_MOVE_CHUNK = 500  # participants moved per pipeline round trip at startup


@dataclass(frozen=True)
class Assignment:
    arm: str
    status: str  # new | kept | moved
    previous_arm: str | None  # set when moved


@dataclass(frozen=True)
class ArmCounts:
    participants: dict[str, int]
    queries: dict[str, int]


class AssignmentStore:
    def __init__(self, redis: Redis, names: StreamNames, experiment: str, arms: list[str]) -> None:
        self._redis = redis
        self._assign_key = names.experiment_key(experiment, "assign")
        self._participants_key = names.experiment_key(experiment, "participants")
        self._queries_key = names.experiment_key(experiment, "queries")
        self._arms = arms
        self._script = redis.register_script(_ASSIGN_SCRIPT)

    async def assign(self, user_id: str, hashed_arm: str, *, count_query: bool) -> Assignment:
        """The participant's recorded arm, recording `hashed_arm` if they have none (one round trip)."""
        return _assignment(await self._script(keys=self._keys, args=self._args(user_id, hashed_arm, count_query)))

    async def recorded(self) -> AsyncIterator[tuple[str, str]]:
        """Every (user_id, arm) on record, in HSCAN chunks (it ends: HSCAN's cursor comes back to 0)."""
        async for user_id, arm in self._redis.hscan_iter(self._assign_key, count=1000):
            yield user_id.decode(), arm.decode()

    async def move(self, moves: list[tuple[str, str]]) -> int:
        """Move participants of removed arms to their hashed arm; returns how many moved (not done already)."""
        moved = 0
        for start in range(0, len(moves), _MOVE_CHUNK):
            async with self._redis.pipeline(transaction=False) as pipe:
                for user_id, hashed_arm in moves[start:start + _MOVE_CHUNK]:
                    await self._script(keys=self._keys, args=self._args(user_id, hashed_arm, False), client=pipe)
                replies = await pipe.execute()
            moved += sum(_assignment(reply).status == "moved" for reply in replies)
        return moved

    async def counts(self) -> ArmCounts:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self._participants_key)
            pipe.hgetall(self._queries_key)
            participants, queries = await pipe.execute()
        return ArmCounts(_decoded(participants), _decoded(queries))

    @property
    def _keys(self) -> list[str]:
        return [self._assign_key, self._participants_key, self._queries_key]

    def _args(self, user_id: str, hashed_arm: str, count_query: bool) -> list[str]:
        return [user_id, hashed_arm, "1" if count_query else "0", *self._arms]


def _assignment(reply: list[bytes]) -> Assignment:
    arm, status, previous = (part.decode() for part in reply)
    return Assignment(arm, status, previous or None)


def _decoded(counts: dict[bytes, bytes]) -> dict[str, int]:
    return {arm.decode(): int(count) for arm, count in counts.items()}
