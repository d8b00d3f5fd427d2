"""Request and response models: the public contract, with the input limits."""

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr, StringConstraints

UserId = Annotated[StrictStr, StringConstraints(min_length=1, max_length=256)]
SessionId = Annotated[StrictStr, StringConstraints(min_length=1, max_length=256)]
Url = Annotated[StrictStr, StringConstraints(max_length=8192)]
ShortText = Annotated[StrictStr, StringConstraints(min_length=1, max_length=256)]


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
    client_timestamp: Annotated[StrictStr, StringConstraints(max_length=64)] | StrictInt | StrictFloat | None = None


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


class ErrorOut(BaseModel):
    error: str
