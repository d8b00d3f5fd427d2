"""Turns a `/log_events` body into records plus one result per event: a bad event never sinks its batch."""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError

from api.build import build_event_record, validate_body
from api.errors import ApiError, field_errors, invalid_fields
from api.limits import Limits
from api.schemas import ClientTimestamp, EventIn
from api.storable import storability_errors
from shared.records import EncodedEvent

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
    """`stamp_for(user_id)`: the user's experiment arm for each record (`Experiments.stamp`)."""
    outcome = BatchOutcome()
    for index, event in enumerate(events):
        try:
            record = _build_one(event, sent_at, received_at, limits, max_event_bytes, stamp_for)
        except ApiError as exc:
            outcome.results.append({"index": index, "error": exc.message, **exc.details})
            continue
        outcome.records.append(record)
        outcome.results.append({"index": index, "id": record.id})
    return outcome


def _build_one(event: Any, sent_at: Any, received_at: datetime, limits: Limits, max_event_bytes: int,
               stamp_for: StampFor | None) -> EncodedEvent:
    """The same checks `/log_event` makes, so an event is accepted alone exactly when it is in a batch."""
    if not isinstance(event, dict):
        raise ApiError(422, "event must be a JSON object")
    if errors := storability_errors(event, limits):
        raise invalid_fields(errors)
    # Storable, so serialisable; a batch must not smuggle in events larger than /log_event takes.
    if len(orjson.dumps(event)) > max_event_bytes:
        raise ApiError(413, f"event is larger than {max_event_bytes} bytes")
    validated = validate_body(EventIn, event, limits)
    return build_event_record(validated, event, received_at, sent_at,
                              stamp_for(validated.user_id) if stamp_for else None)
