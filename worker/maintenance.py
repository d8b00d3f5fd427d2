"""arq cron jobs: housekeeping that is not on the drain's hot path."""

import logging
from typing import Any

from worker.dead_letters import move_dead_letter_stream

logger = logging.getLogger(__name__)

# A consumer with nothing pending and idle this long belongs to a worker that is gone.
_STALE_CONSUMER_MS = 3600 * 1000


async def move_parked_dead_letters(ctx: dict[str, Any]) -> int:
    """Letters parked in Redis while MongoDB was down go to the `dead_letters` collection."""
    moved = await move_dead_letter_stream(ctx["db"], ctx["stream_redis"], ctx["names"])
    if moved:
        logger.info("moved parked dead letters", extra={"count": moved})
    return moved


async def prune_idle_consumers(ctx: dict[str, Any]) -> int:
    """Forget consumers of restarted workers, once they hold no pending entries."""
    redis, names = ctx["stream_redis"], ctx["names"]
    removed = 0
    for consumer in await redis.xinfo_consumers(names.records, names.group):
        if consumer["pending"] == 0 and consumer["idle"] > _STALE_CONSUMER_MS:
            await redis.xgroup_delconsumer(names.records, names.group, consumer["name"])
            removed += 1
    if removed:
        logger.info("pruned idle consumers", extra={"count": removed})
    return removed
