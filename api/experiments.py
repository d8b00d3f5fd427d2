"""Experiment arms: which arm a participant is in, decided by a hash and fixed at their first /query.

The rule every API process follows (docs/llm.md, "Experiment arms"):
- a participant's arm is the one recorded in Redis at their first /query (`AssignmentStore`);
- someone not recorded yet gets `arm_by_hash`: sha256 of the experiment name and user_id against the
  file's cumulative weights. A new participant is recorded with exactly that arm, so the two agree;
- they disagree only for participants recorded under earlier weights. Each process keeps those few
  in memory (`_overrides`, loaded at start and learnt from every /query), so `stamp()` on the event
  path needs no Redis round trip and still agrees with the participant's query records.
"""

import bisect
import functools
import hashlib
import logging
import time
from itertools import accumulate

from redis.asyncio import Redis
from redis.exceptions import RedisError

from api.assignments import ArmCounts, AssignmentStore
from api.conditions import Condition, arm_condition, default_condition
from api.experiment_spec import ExperimentSpec, load_experiment
from shared.settings import Settings
from shared.stream import StreamNames

logger = logging.getLogger(__name__)

_RELOAD_INTERVAL_S = 30.0  # retry of the start-up load when Redis was down then
_REDIS_ERRORS = (RedisError, OSError, TimeoutError)
_HASH_CACHE_SIZE = 65_536  # users; a few MB


def hash_unit(experiment: str, user_id: str) -> float:
    """A uniform number in [0, 1) fixed by (experiment, user_id); the length prefix keeps the pair unambiguous."""
    digest = hashlib.sha256(f"{len(experiment)}:{experiment}{user_id}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class Experiments:
    """Built once in the lifespan from EXPERIMENT_FILE (the API refuses to start on an invalid file)."""

    def __init__(self, settings: Settings, redis: Redis | None = None, names: StreamNames | None = None) -> None:
        self._default = default_condition(settings)
        self.spec: ExperimentSpec | None = load_experiment(settings)
        self._overrides: dict[str, str] = {}  # user_id -> recorded arm, only where it differs from the hash
        self._store: AssignmentStore | None = None
        self._is_loaded = False
        self._last_load_s = float("-inf")
        self._is_redis_up = True
        self._conditions: dict[str, Condition] = {}
        if self.spec is None:
            return
        spec = self.spec
        self._arm_names = [arm.name for arm in spec.arms]
        total = sum(arm.weight for arm in spec.arms)
        self._bounds = [bound / total for bound in accumulate(arm.weight for arm in spec.arms)]
        self._conditions = {arm.name: arm_condition(self._default, spec.name, arm.name, arm.overrides())
                            for arm in spec.arms}
        self._stamps = {arm.name: {"experiment": spec.name, "arm": arm.name} for arm in spec.arms}
        # Events of one user come in runs (a batch is usually one user's): a hit costs ~0.2 us, a sha256 ~2 us.
        self._cached_arm_by_hash = functools.lru_cache(maxsize=_HASH_CACHE_SIZE)(self._compute_arm_by_hash)
        if redis is not None and names is not None:
            self._store = AssignmentStore(redis, names, spec.name, self._arm_names)

    @property
    def is_running(self) -> bool:
        return self.spec is not None

    @property
    def max_history_turns(self) -> int:
        """The most earlier turns any condition sends: what session history must keep."""
        return max(condition.history_turns for condition in (self._conditions.values() or [self._default]))

    def conditions(self) -> dict[str, Condition]:
        return dict(self._conditions)

    def arm_by_hash(self, user_id: str) -> str:
        """The arm the file's weights give this user: pure, synchronous, the same in every process."""
        return self._cached_arm_by_hash(user_id)

    def _compute_arm_by_hash(self, user_id: str) -> str:
        index = bisect.bisect_right(self._bounds, hash_unit(self.spec.name, user_id))
        return self._arm_names[min(index, len(self._arm_names) - 1)]  # min: guards float rounding at 1.0

    def arm_of(self, user_id: str) -> str:
        """The participant's arm without a Redis round trip: a known earlier assignment, else the hash."""
        return self._overrides.get(user_id) or self.arm_by_hash(user_id)

    def stamp(self, user_id: str) -> dict[str, str]:
        """`{"experiment", "arm"}` for the user's records, or {} when no experiment runs. Do not mutate it."""
        return self._stamps[self.arm_of(user_id)] if self.spec else {}

    def condition_for(self, user_id: str) -> Condition:
        """The condition by `arm_of`, without Redis: neither records nor counts. /query should use `assign`."""
        return self._conditions[self.arm_of(user_id)] if self.spec else self._default

    async def assign(self, user_id: str) -> Condition:
        """For /query: the recorded arm (recording a new participant) and one more query counted, in one
        round trip. Redis down: `condition_for`, so the query still runs (logged once)."""
        if self.spec is None:
            return self._default
        if self._store is None:
            return self.condition_for(user_id)
        hashed = self.arm_by_hash(user_id)
        try:
            await self._load_if_due()
            assignment = await self._store.assign(user_id, hashed, count_query=True)
        except _REDIS_ERRORS as exc:
            self._note_redis(exc)
            return self.condition_for(user_id)
        self._note_redis(None)
        self._remember(user_id, assignment.arm, hashed)
        if assignment.previous_arm:
            logger.warning("participant moved: their arm is no longer in the experiment file", extra={
                "user_id": user_id, "from_arm": assignment.previous_arm, "arm": assignment.arm})
        return self._conditions[assignment.arm]

    async def counts(self) -> ArmCounts:
        """Participants and queries per arm, arms removed from the file included. Raises on Redis errors."""
        if self._store is None:
            return ArmCounts({}, {})
        return await self._store.counts()

    async def start(self) -> None:
        """Learn the participants whose recorded arm the hash no longer gives; move those of removed arms."""
        if self._store is not None:
            await self._load_if_due()

    async def _load_if_due(self) -> None:
        if self._is_loaded or time.monotonic() - self._last_load_s < _RELOAD_INTERVAL_S:
            return
        self._last_load_s = time.monotonic()
        try:
            await self._load()
        except _REDIS_ERRORS as exc:
            logger.warning("experiment assignments not loaded; arms by hash until Redis answers",
                           extra={"experiment": self.spec.name, "error": type(exc).__name__})

    async def _load(self) -> None:
        recorded, removed = 0, []
        async for user_id, arm in self._store.recorded():
            recorded += 1
            hashed = self.arm_by_hash(user_id)
            if arm not in self._conditions:
                removed.append((user_id, hashed))  # stamped by the hash already: that is where they move
            else:
                self._remember(user_id, arm, hashed)
        moved = await self._store.move(removed)
        self._is_loaded = True
        log = logger.warning if removed else logger.info
        log("experiment assignments loaded", extra={
            "experiment": self.spec.name, "participants": recorded, "off_hash": len(self._overrides),
            "in_removed_arms": len(removed), "moved": moved})

    def _remember(self, user_id: str, arm: str, hashed: str) -> None:
        if arm == hashed:
            self._overrides.pop(user_id, None)
        else:
            self._overrides[user_id] = arm

    def _note_redis(self, error: BaseException | None) -> None:
        """Log the transitions only: one line when Redis goes, one when it is back."""
        if error is not None and self._is_redis_up:
            logger.warning("redis unavailable: experiment arms by hash, not recorded or counted",
                           extra={"error": type(error).__name__})
        elif error is None and not self._is_redis_up:
            logger.info("redis back: experiment arms recorded again")
        self._is_redis_up = error is None
