"""Request and response models: the public contract, with the input limits."""

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr, StringConstraints

UserId = Annotated[StrictStr, StringConstraints(min_length=1, max_length=256)]
SessionId = Annotated[StrictStr, StringConstraints(min_length=1, max_length=256)]
Url = Annotated[StrictStr, StringConstraints(max_length=8192)]
ShortText = Annotated[StrictStr, StringConstraints(min_length=1, max_length=256)]
# An ISO-8601 string or epoch milliseconds, kept as sent; api/clock.py reads it.
ClientTime = Annotated[StrictStr, StringConstraints(max_length=64)] | StrictInt | StrictFloat


class EventIn(BaseModel):
    """`POST /log_event`. Unknown top-level fields are kept and stored as sent."""

    model_config = ConfigDict(extra="allow")

    user_id: UserId
    event_type: Annotated[StrictStr, StringConstraints(min_length=1, max_length=64)]
    session_id: SessionId | None = None
    query: Annotated[StrictStr, StringConstraints(max_length=8000)] | None = None
    target_url: Url | None = None
    page_url: Url | None = None
    extra_data: dict[str, Any] | None = None
    event_id: ShortText | None = Field(default=None, description="Idempotency key: a retry with the same user_id and event_id is stored once.")
    query_id: ShortText | None = Field(default=None, description="The /query answer that showed the link.")
    client_timestamp: ClientTime | None = Field(
        default=None, description="When the event happened, by the client clock: ISO-8601 or epoch ms.")
    sent_at: ClientTime | None = Field(
        default=None, description="When the client sent it, by the same clock; corrects client clock skew.")


class EventBatchIn(BaseModel):
    """`POST /log_events`. Each event is validated on its own; see the 207 answer."""

    events: list[EventIn] = Field(min_length=1, description="1 to MAX_BATCH_EVENTS (default 500) events.")
    sent_at: ClientTime | None = Field(
        default=None, description="When the client sent the batch, by its clock; applies to every event.")


class QueryIn(BaseModel):
    """`POST /query`. Unknown top-level fields are kept and stored as sent."""

    model_config = ConfigDict(extra="allow")

    user_id: UserId
    session_id: SessionId | None = None
    query: Annotated[StrictStr, StringConstraints(min_length=1, max_length=8000)]


class SourceOut(BaseModel):
    title: str
    url: str
    content: str


class QueryOut(BaseModel):
    response: str
    source: list[SourceOut]
    query_id: str
    model_used: str


class QueuedOut(BaseModel):
    status: str = "queued"
    id: str


class BatchQueuedOut(BaseModel):
    status: str = "queued"
    ids: list[str] = Field(description="One id per event, in the order sent.")


class EventResultOut(BaseModel):
    index: int
    id: str | None = None
    error: str | None = None
    fields: list[dict[str, str]] | None = None


class BatchPartialOut(BaseModel):
    status: str = "queued"
    accepted: int
    rejected: int
    results: list[EventResultOut] = Field(description="One per event, in the order sent: an id or an error.")


class ErrorOut(BaseModel):
    error: str
