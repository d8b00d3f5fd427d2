"""The stored records: one pydantic model each, used by the API to write and the worker to read.

The API builds records (server timestamp, id) and appends `encode_entries(records)`: one stream
entry per request, `kind` and `data`, the records' JSON one per line. The worker reads
`entry_lines()`, decodes each line (`decode_record`) and stores `record.to_document()`. Input
limits live on the API's request models, not here, so an entry written by an older API version
always decodes; an entry of one record, as all were before batches shared one, is one line.
Events take a shorter way to the same JSON: `EncodedEvent`.
"""

import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

import orjson
from pydantic import BaseModel, ConfigDict, Field

# Deterministic ids for client idempotency keys; never change it, or retries stop deduplicating.
_ID_NAMESPACE = uuid.UUID("5d3c8a2e-6f0b-4c1e-9a57-2b8f0c4d7e11")


class Kind(StrEnum):
    QUERY = "query"
    EVENT = "event"


def utc_now_ms() -> datetime:
    """Server receipt time, truncated to the millisecond a BSON date can hold."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def new_record_id() -> str:
    """A random UUID (version 4) as 32 hex digits, like `uuid.uuid4().hex` at a third of the cost."""
    return new_record_ids(1)[0]


# Set the version (4) and variant (RFC 4122) bits of every id at once, in C.
_VERSION_4 = bytes(byte & 0x0F | 0x40 for byte in range(256))
_VARIANT_RFC4122 = bytes(byte & 0x3F | 0x80 for byte in range(256))


def new_record_ids(count: int) -> list[str]:
    """`count` random version-4 UUIDs as hex, from one `os.urandom` call: under a VM, the system
    call per id was 8% of a batch's CPU (py-spy, `make bench`)."""
    raw = bytearray(os.urandom(16 * count))
    raw[6::16] = raw[6::16].translate(_VERSION_4)
    raw[8::16] = raw[8::16].translate(_VARIANT_RFC4122)
    text = raw.hex()
    return [text[start:start + 32] for start in range(0, 32 * count, 32)]


def event_record_id(user_id: str, event_id: str) -> str:
    """Same (user_id, event_id) -> same id, so a retried event is stored once."""
    # The length prefix keeps ("ab", "c") and ("a", "bc") apart.
    return uuid.uuid5(_ID_NAMESPACE, f"{len(user_id)}:{user_id}{event_id}").hex


class Source(BaseModel):
    title: str
    url: str
    content: str = ""
    rank: int | None = None  # 1-based position in which it was shown


class Record(BaseModel):
    """Fields every stored record has; client fields beyond these are kept as extras."""

    model_config = ConfigDict(extra="allow")
    kind: ClassVar[Kind]
    collection: ClassVar[str]

    id: str
    timestamp: datetime
    user_id: str

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(exclude_unset=True))

    def to_document(self) -> dict[str, Any]:
        document = self.model_dump(exclude_unset=True)
        document["_id"] = document.pop("id")
        return document


class EventRecord(Record):
    kind = Kind.EVENT
    collection = "events"

    event_type: str
    session_id: str | None = None
    event_id: str | None = None
    query_id: str | None = None
    client_timestamp: Any = None  # as the client sent it
    sent_at: Any = None  # the client clock at sending, as sent
    event_time: datetime | None = None  # client time corrected for skew; see api/clock.py
    extra_data: dict[str, Any] | None = None
    experiment: str | None = None  # stamped by the server from user_id
    arm: str | None = None


class QueryRecord(Record):
    kind = Kind.QUERY
    collection = "queries"

    session_id: str | None = None
    query: str
    response: str | None = None
    source: list[Source] = Field(default_factory=list)
    sources_provider: str | None = None
    model_requested: str | None = None
    model_used: str  # the deployment that actually answered (a fallback, maybe)
    latency_ms: float
    ttft_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    finish_reason: str | None = None
    temperature: float | None = None
    system_prompt_hash: str | None = None
    history_turns: int | None = None  # earlier turns sent as context
    streamed: bool | None = None
    aborted: bool | None = None  # the client left before the answer ended; `response` is what it had been shown
    experiment: str | None = None
    arm: str | None = None
    error: str | None = None


RECORD_TYPES: dict[Kind, type[Record]] = {Kind.QUERY: QueryRecord, Kind.EVENT: EventRecord}
COLLECTIONS: dict[Kind, str] = {kind: model.collection for kind, model in RECORD_TYPES.items()}


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs a call per field, and this is per event
class EncodedEvent:
    """An `EventRecord` already in its stream form, built without a model instance.

    The API's input model has already validated every client field, strictly (nothing coerced),
    so the record is the body as sent plus the server's fields. On `/log_events`, building and
    dumping an `EventRecord` per event cost as much as all the rest of the batch's work. The
    worker still decodes the entry as an `EventRecord`: that model remains the definition.
    """

    kind = Kind.EVENT
    collection = "events"

    id: str
    data: bytes  # the record's JSON, as `EventRecord.to_json()` writes it

    @classmethod
    def encode(cls, fields: dict[str, Any]) -> "EncodedEvent":
        """`fields`: valid `EventRecord` fields, "id" among them."""
        return cls(fields["id"], orjson.dumps(fields))

    def to_json(self) -> bytes:
        return self.data

    def to_document(self) -> dict[str, Any]:
        return EventRecord.model_validate_json(self.data).to_document()


Queueable = Record | EncodedEvent  # what the API appends to the stream


def encode_entries(records: Sequence[Queueable]) -> list[dict[str, bytes]]:
    """One stream entry per run of records of one kind: a request's records share one entry.

    A batch of 100 events as one entry costs Redis one XADD instead of 100, and redis-py one
    argument to pack instead of 200: under `make bench`, 1.5x the batched events per second.
    orjson never writes a raw newline (inside strings it is escaped), so lines split back exactly.
    """
    entries: list[dict[str, bytes]] = []
    start = 0
    for end in range(1, len(records) + 1):
        if end == len(records) or records[end].kind != records[start].kind:
            data = b"\n".join(record.to_json() for record in records[start:end])
            entries.append({"kind": records[start].kind.value.encode(), "data": data})
            start = end
    return entries


def entry_lines(fields: dict[bytes, bytes]) -> tuple[Kind, list[bytes]]:
    """The kind of an entry's records and their JSON, one per record. Raises KeyError or ValueError."""
    return Kind(fields[b"kind"].decode()), fields[b"data"].split(b"\n")


def entry_record_count(fields: dict[bytes, bytes]) -> int:
    """How many records an entry holds, without decoding it: one per line."""
    return fields.get(b"data", b"").count(b"\n") + 1


def decode_record(kind: Kind, data: bytes) -> Record:
    """One line of an entry. Raises ValueError (pydantic's ValidationError is one) if malformed."""
    return RECORD_TYPES[kind].model_validate_json(data)


def decode_entry(fields: dict[bytes, bytes]) -> list[Record]:
    """Every record of a stream entry. Raises KeyError or ValueError if the entry or any line is malformed."""
    kind, lines = entry_lines(fields)
    return [decode_record(kind, line) for line in lines]
