"""Client clocks are wrong: turn a client's event time into server time, or fall back to receipt.

`event_time = receipt - (sent_at - client_timestamp)`: the gap between the event and the send is
measured on one (possibly skewed) client clock, so the skew cancels; the server clock places it.
This is the formula of Segment, PostHog and Snowplow (their `timestamp`/`derived_tstamp`).
"""

from datetime import UTC, datetime, timedelta
from typing import Any

# PostHog's guard: a corrected time this far ahead of receipt is a broken clock, not an event.
MAX_FUTURE = timedelta(hours=23)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_client_time(value: Any) -> datetime | None:
    """An ISO-8601 string (no offset means UTC) or a number of epoch milliseconds; None if unusable."""
    try:
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value)
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return _EPOCH + timedelta(milliseconds=value)
    except (ValueError, OverflowError):
        return None
    return None


def correct_event_time(received_at: datetime, client_timestamp: Any, sent_at: Any) -> datetime:
    """Skew-corrected event time, in UTC to the millisecond; `received_at` when it cannot be computed."""
    if client_timestamp is None or sent_at is None:  # most events: nothing to correct
        return received_at
    event_at = parse_client_time(client_timestamp)
    sent = parse_client_time(sent_at)
    if event_at is None or sent is None:
        return received_at
    try:
        corrected = received_at - (sent - event_at)
    except OverflowError:
        return received_at
    if corrected - received_at > MAX_FUTURE:
        return received_at
    return corrected.replace(microsecond=corrected.microsecond // 1000 * 1000)
