"""Turns a `/log_events` body into records plus one result per event: a bad event never sinks its batch."""

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from api.build import build_event_record, validate_body
from api.errors import ApiError, field_errors, invalid_fields
from api.limits import Limits
from api.schemas import ClientTimestamp, EventIn, with_limits
from api.storable import storability_errors
from shared.records import EncodedEvent, new_record_ids

StampFor = Callable[[str], dict[str, str]]


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[Any]
    sent_at: ClientTimestamp | None = None


@dataclass
class BatchOutcome:
    records: list[EncodedEvent] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)  # in input order: {"index", "id"} or an error

    @property
    def rejected(self) -> int:
        return len(self.results) - len(self.records)


def read_envelope(body: Any, max_events: int) -> tuple[list[Any], Any]:
    """The events and the batch's `sent_at`; a batch-level problem is one 4xx for the whole batch."""
    if not isinstance(body, dict):
        raise ApiError(422, "request body must be a JSON object with an `events` list")
    try:
        envelope = _Envelope.model_validate(body)
    except ValidationError as exc:
        raise invalid_fields(field_errors(exc.errors())) from None
    if not envelope.events:
        raise ApiError(422, f"`events` is empty; send 1 to {max_events} events")
    if len(envelope.events) > max_events:
        raise invalid_fields([{"field": "events",
                               "message": f"the batch has {len(envelope.events)} events; the limit is {max_events}"}])
    return envelope.events, envelope.sent_at


def build_batch(events: list[Any], sent_at: Any, received_at: datetime, limits: Limits,
                max_event_bytes: int, stamp_for: StampFor | None = None) -> BatchOutcome:
    """`stamp_for(user_id)`: the user's experiment arm for each record (`Experiments.stamp`).

    The same checks `/log_event` makes, so an event is accepted alone exactly when it is in a batch.
    """
    refusals = {index: refusal for index, event in enumerate(events)
                if (refusal := _refusal(event, limits, max_event_bytes)) is not None}
    validated = iter(_validate_all([event for index, event in enumerate(events) if index not in refusals], limits))
    random_ids = iter(new_record_ids(len(events) - len(refusals)))
    outcome = BatchOutcome()
    for index, event in enumerate(events):
        result = refusals[index] if index in refusals else next(validated)
        if isinstance(result, ApiError):
            outcome.results.append({"index": index, "error": result.message, **result.details})
            continue
        stamp = stamp_for(result.user_id) if stamp_for else None
        record = build_event_record(result, event, received_at, sent_at, stamp, next(random_ids))
        outcome.records.append(record)
        outcome.results.append({"index": index, "id": record.id})
    return outcome


def _refusal(event: Any, limits: Limits, max_event_bytes: int) -> ApiError | None:
    """What refuses the event before validation: not an object, not storable, too large."""
    if not isinstance(event, dict):
        return ApiError(422, "event must be a JSON object")
    if errors := storability_errors(event, limits):
        return invalid_fields(errors)
    # Storable, so serialisable; a batch must not smuggle in events larger than /log_event takes.
    if len(orjson.dumps(event)) > max_event_bytes:
        return ApiError(413, f"event is larger than {max_event_bytes} bytes")
    return None


def _validate_all(events: list[dict[str, Any]], limits: Limits) -> Sequence[EventIn | ApiError]:
    """One pydantic call for the whole batch; a batch with an invalid event is validated again event
    by event, so that each error is the one `/log_event` would give."""
    try:
        return _event_list(limits).validate_python(events)
    except ValidationError:
        return [_validated_or_refusal(event, limits) for event in events]


def _validated_or_refusal(event: dict[str, Any], limits: Limits) -> EventIn | ApiError:
    try:
        return validate_body(EventIn, event, limits)
    except ApiError as exc:
        return exc


@functools.cache
def _event_list(limits: Limits) -> TypeAdapter[list[EventIn]]:
    return TypeAdapter(list[with_limits(EventIn, limits)])  # type: ignore[misc]
