"""`build_event_record` writes the stream entry without an `EventRecord`: it must be the entry the model writes."""

from datetime import UTC, datetime
from typing import Any

import pytest

from api.build import build_event_record
from api.clock import correct_event_time
from api.limits import Limits
from api.schemas import EventIn
from shared.records import EventRecord, decode_entry, encode_entries, event_record_id

RECEIVED = datetime(2026, 12, 4, 6, 0, 0, 123000, tzinfo=UTC)
BODIES = [
    {"user_id": "u", "event_type": "click"},
    {"user_id": "ü🚀", "event_type": "scroll", "session_id": None, "extra_data": {"depth": 0.75, "deep": [1, None, {}]},
     "page_url": "https://a.example/é", "anything": [True, -(2**63)], "nested": {"a": {"b": "c"}}},
    {"user_id": "u", "event_type": "hover", "event_id": "e-1", "client_timestamp": "2026-12-04T05:59:58Z",
     "sent_at": 1796363999000},
    {"user_id": "u", "event_type": "click", "client_timestamp": 1796363998000.5},
]


def _built_by_the_model(body: dict[str, Any], batch_sent_at: Any, stamp: dict[str, str]) -> EventRecord:
    """The record as the pydantic models alone would build it."""
    event = EventIn.model_validate(body, context=Limits())
    fields = event.model_dump(exclude_unset=True)
    if event.sent_at is None and batch_sent_at is not None:
        fields["sent_at"] = batch_sent_at
    record_id = event_record_id(event.user_id, event.event_id) if event.event_id else None
    return EventRecord(**fields, **stamp, id=record_id or "random", timestamp=RECEIVED,
                       event_time=correct_event_time(RECEIVED, event.client_timestamp, fields.get("sent_at")))


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize(("batch_sent_at", "stamp"), [(None, {}), ("2026-12-04T06:00:01Z", {"experiment": "x", "arm": "B"})])
def test_the_encoded_event_is_the_record_the_model_builds(body: dict, batch_sent_at: Any, stamp: dict) -> None:
    encoded = build_event_record(EventIn.model_validate(body, context=Limits()), body, RECEIVED, batch_sent_at, stamp)

    [decoded] = decode_entry({key.encode(): value for key, value in encode_entries([encoded])[0].items()})
    expected = _built_by_the_model(body, batch_sent_at, stamp)

    assert isinstance(decoded, EventRecord)
    assert decoded.id == encoded.id
    if "event_id" not in body:
        expected = expected.model_copy(update={"id": encoded.id})
    assert decoded.to_document() == expected.to_document()
    assert encoded.to_document() == expected.to_document()  # the Redis-down path writes the same document
    assert decoded.model_fields_set == expected.model_fields_set  # nothing the client left out is added


def test_the_body_is_not_changed() -> None:
    body = {"user_id": "u", "event_type": "click"}

    build_event_record(EventIn.model_validate(body), body, RECEIVED, "2026-12-04T06:00:01Z", {"arm": "A"})

    assert body == {"user_id": "u", "event_type": "click"}
