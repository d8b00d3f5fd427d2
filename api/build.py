"""Builds stored records from validated requests: the server sets the id and the receipt time."""

from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from api.clock import correct_event_time
from api.conditions import Condition
from api.errors import ApiError, field_errors, invalid_fields
from api.limits import Limits
from api.llm import LlmAnswer
from api.schemas import EventIn, QueryIn, with_limits
from shared.records import EncodedEvent, QueryRecord, Source, event_record_id, new_record_id

M = TypeVar("M", bound=BaseModel)


def validate_body(model: type[M], body: Any, limits: Limits) -> M:
    """The request model, checked against the app's configured limits (see `api.schemas.with_limits`)."""
    if not isinstance(body, dict):
        raise ApiError(422, "request body must be a JSON object")
    try:
        return with_limits(model, limits).model_validate(body)
    except ValidationError as exc:
        raise invalid_fields(field_errors(exc.errors())) from None


def build_event_record(
    event: EventIn, sent: dict[str, Any], received_at: datetime, batch_sent_at: Any = None,
    stamp: dict[str, str] | None = None, random_id: str | None = None,
) -> EncodedEvent:
    """`sent` is the body `event` was validated from, stored as sent: EventIn's types are strict, so
    validation changed nothing in it. The event's own `sent_at` wins over its batch's; a batch's is
    stored on each of its events. `random_id`: the id unless the event has an `event_id` (a batch
    draws its ids at once, `new_record_ids`)."""
    fields = dict(sent)
    if event.sent_at is None and batch_sent_at is not None:
        fields["sent_at"] = batch_sent_at
    if stamp:  # the user's experiment arm (api/experiments.py)
        fields.update(stamp)
    if event.event_id:
        fields["id"] = event_record_id(event.user_id, event.event_id)
    else:
        fields["id"] = random_id or new_record_id()
    fields["timestamp"] = received_at
    fields["event_time"] = correct_event_time(received_at, event.client_timestamp, fields.get("sent_at"))
    return EncodedEvent.encode(fields)


def build_query_record(
    query: QueryIn,
    query_id: str,
    received_at: datetime,
    outcome: LlmAnswer | ApiError,
    sources: list[Source],
    condition: Condition,
    history_turns: int,
) -> QueryRecord:
    """`outcome` is the answer, or the error the client got (LLM or search failure)."""
    fields: dict[str, Any] = query.model_dump(exclude_unset=True)
    fields.update(
        id=query_id, timestamp=received_at, source=sources, sources_provider=condition.sources_provider,
        model_requested=condition.model, temperature=condition.temperature,
        system_prompt_hash=condition.system_prompt_hash, history_turns=history_turns,
        experiment=condition.experiment, arm=condition.arm,
    )
    if isinstance(outcome, LlmAnswer):
        fields.update(response=outcome.text, model_used=outcome.model_used, latency_ms=outcome.latency_ms,
                      ttft_ms=outcome.ttft_ms, prompt_tokens=outcome.prompt_tokens,
                      completion_tokens=outcome.completion_tokens, cost_usd=outcome.cost_usd,
                      finish_reason=outcome.finish_reason)
    else:
        fields.update(response=None, error=outcome.message, model_used=getattr(outcome, "model_used", condition.model),
                      latency_ms=getattr(outcome, "latency_ms", 0.0))
    return QueryRecord(**fields)
