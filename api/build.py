"""Builds stored records from validated requests: the server sets the id and the receipt time."""

from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from api.clock import correct_event_time
from api.errors import ApiError, field_errors
from api.llm import LlmAnswer, LlmFailure
from api.schemas import EventIn, QueryIn
from shared.records import EventRecord, QueryRecord, Source, event_record_id, new_record_id

M = TypeVar("M", bound=BaseModel)
# Stored fields the server sets; a client sending one would otherwise overwrite it (or crash the build).
_SERVER_FIELDS = frozenset({"id", "_id", "timestamp", "event_time"})


def validate_body(model: type[M], body: Any) -> M:
    if not isinstance(body, dict):
        raise ApiError(422, "request body must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise ApiError(422, "request validation failed", fields=field_errors(exc.errors())) from None


def build_event_record(event: EventIn, body: dict[str, Any], received_at: datetime,
                       batch_sent_at: Any = None) -> EventRecord:
    """`body` is what `event` was validated from. EventIn is strict (it coerces nothing), so the body
    is already the validated fields as sent: no second walk through `model_dump`.
    The event's own `sent_at` wins over its batch's."""
    if reserved := _SERVER_FIELDS.intersection(body):
        raise ApiError(422, "fields set by the server cannot be sent", fields=[
            {"field": name, "message": "is set by the server; send client times as client_timestamp"}
            for name in sorted(reserved)])
    record_id = event_record_id(event.user_id, event.event_id) if event.event_id else new_record_id()
    sent_at = batch_sent_at if event.sent_at is None else event.sent_at
    event_time = correct_event_time(received_at, event.client_timestamp, sent_at)
    fields = body if event.sent_at is not None or batch_sent_at is None else {**body, "sent_at": batch_sent_at}
    return EventRecord(**fields, id=record_id, timestamp=received_at, event_time=event_time)


def build_query_record(
    query: QueryIn,
    query_id: str,
    received_at: datetime,
    outcome: LlmAnswer | LlmFailure,
    sources: list[Source],
) -> QueryRecord:
    fields: dict[str, Any] = query.model_dump(exclude_unset=True)
    fields.update(id=query_id, timestamp=received_at, model_used=outcome.model_used,
                  latency_ms=outcome.latency_ms, source=sources)
    if isinstance(outcome, LlmFailure):
        fields.update(response=None, error=outcome.message)
    else:
        fields.update(response=outcome.text, prompt_tokens=outcome.prompt_tokens,
                      completion_tokens=outcome.completion_tokens, cost_usd=outcome.cost_usd)
    return QueryRecord(**fields)
