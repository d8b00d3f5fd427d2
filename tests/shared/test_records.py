from shared.records import (
    EventRecord,
    QueryRecord,
    decode_entry,
    encode_entries,
    event_record_id,
    new_record_id,
    utc_now_ms,
)


def test_event_id_gives_a_deterministic_id_per_user() -> None:
    assert event_record_id("u", "e1") == event_record_id("u", "e1")
    assert event_record_id("u", "e1") != event_record_id("u2", "e1")
    assert event_record_id("ab", "c") != event_record_id("a", "bc")
    assert new_record_id() != new_record_id()


def test_timestamps_are_utc_milliseconds() -> None:
    now = utc_now_ms()

    assert now.utcoffset().total_seconds() == 0
    assert now.microsecond % 1000 == 0


def test_stream_round_trip_keeps_extras_and_unicode() -> None:
    record = EventRecord(id="x", timestamp=utc_now_ms(), user_id="ü", event_type="click",
                         extra_data={"emoji": "🚀", "deep": {"a": [1, None]}}, arm="B")

    [decoded] = decode_entry({k.encode(): v for k, v in encode_entries([record])[0].items()})

    assert isinstance(decoded, EventRecord)
    assert decoded.to_document() == record.to_document()
    assert decoded.to_document()["_id"] == "x"
    assert decoded.to_document()["arm"] == "B"
    assert "query_id" not in decoded.to_document()  # only what was sent is stored


def test_query_record_goes_to_queries() -> None:
    record = QueryRecord(id="q", timestamp=utc_now_ms(), user_id="u", query="?", model_used="m", latency_ms=1.0)

    [decoded] = decode_entry({k.encode(): v for k, v in encode_entries([record])[0].items()})

    assert decoded.collection == "queries"
