from datetime import UTC, datetime, timedelta

import pytest

from api.clock import correct_event_time, parse_client_time

RECEIVED = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(("value", "expected"), [
    ("2025-06-01T11:59:58.250Z", datetime(2025, 6, 1, 11, 59, 58, 250_000, tzinfo=UTC)),
    ("2025-06-01T13:59:58+02:00", datetime(2025, 6, 1, 11, 59, 58, tzinfo=UTC)),
    ("2025-06-01T11:59:58", datetime(2025, 6, 1, 11, 59, 58, tzinfo=UTC)),  # no offset: UTC
    (1748779198250, datetime(2025, 6, 1, 11, 59, 58, 250_000, tzinfo=UTC)),  # epoch ms
    (1748779198250.5, datetime(2025, 6, 1, 11, 59, 58, 250_500, tzinfo=UTC)),
])
def test_parse_client_time_reads_iso_strings_and_epoch_ms(value: object, expected: datetime) -> None:
    assert parse_client_time(value) == expected


@pytest.mark.parametrize("value", [None, "", "yesterday", "1748779198250", True, 10**30, -(10**30), [], {}])
def test_parse_client_time_gives_none_for_anything_else(value: object) -> None:
    assert parse_client_time(value) is None


def test_skew_cancels_out_whatever_the_client_clock_says() -> None:
    # The client clock is 1 h fast; the event happened 3 s before sending, which is what counts.
    skewed = datetime(2025, 6, 1, 13, 0, 10, tzinfo=UTC)
    event_time = correct_event_time(RECEIVED, (skewed - timedelta(seconds=3)).isoformat(), skewed.isoformat())

    assert event_time == RECEIVED - timedelta(seconds=3)


def test_epoch_ms_and_iso_mix() -> None:
    sent_ms = 1_000_000_000_000
    assert correct_event_time(RECEIVED, sent_ms - 1500, "2001-09-09T01:46:40Z") == RECEIVED - timedelta(seconds=1.5)


def test_result_is_truncated_to_the_millisecond() -> None:
    event_time = correct_event_time(RECEIVED, 1000.0004, 2000)

    assert event_time == RECEIVED - timedelta(milliseconds=1000)


@pytest.mark.parametrize(("client_timestamp", "sent_at"), [
    (None, None),
    ("2025-06-01T11:00:00Z", None),  # no sent_at: the skew is unknown
    (None, "2025-06-01T11:00:00Z"),
    ("garbage", "2025-06-01T11:00:00Z"),
    ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"),  # out of datetime's range
])
def test_receipt_time_when_it_cannot_be_computed(client_timestamp: object, sent_at: object) -> None:
    assert correct_event_time(RECEIVED, client_timestamp, sent_at) == RECEIVED


def test_more_than_23_hours_in_the_future_falls_back_to_receipt() -> None:
    sent = "2025-06-01T00:00:00Z"
    assert correct_event_time(RECEIVED, "2025-06-01T23:00:00Z", sent) == RECEIVED + timedelta(hours=23)
    assert correct_event_time(RECEIVED, "2025-06-01T23:00:00.001Z", sent) == RECEIVED
