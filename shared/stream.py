"""Redis names and stream helpers. Key and stream names live only here."""

from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from shared.records import Queueable, encode_entries


@dataclass(frozen=True)
class StreamNames:
    records: str
    group: str
    dead_letters: str
    arq_queue: str
    prefix: str

    def rate_limit_key(self, scope: str, ident: str, window: int) -> str:
        return f"{self.prefix}:rate:{scope}:{window}:{ident}"

    def lone_attempt_key(self, entry_id: bytes) -> str:
        """Set while a worker stores one suspect entry alone; left behind only if that worker died."""
        return f"{self.prefix}:lone-attempt:{entry_id.decode()}"

    def experiment_key(self, experiment: str, part: str) -> str:
        """`assign` (user_id -> arm), `participants` and `queries` (arm -> count) of one experiment."""
        return f"{self.prefix}:exp:{experiment}:{part}"

    def session_key(self, user_id: str, session_id: str) -> str:
        """One participant's session; the length prefix keeps ("a:b", "c") apart from ("a", "b:c")."""
        return f"{self.prefix}:session:{len(user_id)}:{user_id}:{session_id}"

    @classmethod
    def for_prefix(cls, prefix: str) -> "StreamNames":
        return cls(
            records=f"{prefix}:records",
            group=f"{prefix}:writers",
            dead_letters=f"{prefix}:dead_letters",
            arq_queue=f"{prefix}:arq",
            prefix=prefix,
        )


async def append_record(redis: Redis, stream: str, record: Queueable) -> bytes:
    """XADD one record; returns the entry id once Redis has it."""
    [entry_id] = await append_entries(redis, stream, encode_entries([record]))
    return entry_id


async def append_records(redis: Redis, stream: str, records: Sequence[Queueable]) -> list[bytes]:
    """The records of one request, as one entry (one per kind, see `encode_entries`)."""
    return await append_entries(redis, stream, encode_entries(records))


# One script call queues the entries of many requests: one round trip, one command to pack and one
# reply to parse, and Redis runs it atomically: all of them are queued or none.
_APPEND_SCRIPT = """
local ids = {}
for i = 1, #ARGV, 2 do
  ids[#ids + 1] = redis.call('XADD', KEYS[1], '*', 'kind', ARGV[i], 'data', ARGV[i + 1])
end
return ids
"""


async def append_entries(redis: Redis, stream: str, entries: Sequence[dict[str, bytes]]) -> list[bytes]:
    """XADD the entries in one round trip, atomically; their ids, in order."""
    if len(entries) == 1:
        return [await redis.xadd(stream, entries[0])]
    args: list[bytes] = []
    for entry in entries:
        args += (entry["kind"], entry["data"])
    return await redis.register_script(_APPEND_SCRIPT)(keys=[stream], args=args)


async def ensure_group(redis: Redis, names: StreamNames) -> None:
    """Create the consumer group (and the stream) if missing. Safe to call from every process."""
    try:
        await redis.xgroup_create(names.records, names.group, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


async def backlog_size(redis: Redis, names: StreamNames) -> int:
    """Entries not yet stored: acked entries are deleted, so the stream length is the backlog."""
    return await redis.xlen(names.records)
