"""Filter values can never become MongoDB operators, checked against real SecantusDB."""

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from pymongo import MongoClient
from pymongo.collection import Collection

from scripts.devstack import Service
from shared.filters import FilterValueError, equals, one_of, plain_value
from tests.conftest import mongo_uri


@pytest.fixture
def events(mongo_server: Service) -> Iterator[Collection]:
    client = MongoClient(mongo_uri(mongo_server))
    collection = client["filters_test"]["events"]
    collection.delete_many({})
    collection.insert_many([
        {"_id": 1, "user_id": "alice", "event_type": "click"},
        {"_id": 2, "user_id": "bob", "event_type": "scroll"},
        {"_id": 3, "user_id": {"$ne": None}, "event_type": "odd"},  # an operator-shaped stored value
    ])
    yield collection
    client.close()


def test_equals_matches_only_the_literal_value(events: Collection) -> None:
    assert [d["_id"] for d in events.find(equals("user_id", "alice"))] == [1]
    assert [d["_id"] for d in events.find(equals("user_id", "$ne"))] == []


def test_operator_shaped_values_are_refused_not_interpreted(events: Collection) -> None:
    for value in ({"$ne": None}, {"$gt": ""}, ["alice", "bob"], {"$where": "sleep(100)"}):
        with pytest.raises(FilterValueError, match="user_id must be a plain value"):
            equals("user_id", value)
    # Unwrapped, the same value would have matched every user: this is what $eq prevents.
    assert events.count_documents({"user_id": {"$ne": None}}) == 3


def test_one_of_takes_plain_values_only(events: Collection) -> None:
    assert sorted(d["_id"] for d in events.find(one_of("event_type", ["click", "scroll"]))) == [1, 2]
    with pytest.raises(FilterValueError):
        one_of("event_type", ["click", {"$regex": ".*"}])


def test_plain_values_pass_through() -> None:
    when = datetime(2024, 1, 1, tzinfo=UTC)
    for value in ("x", 1, 1.5, True, None, when):
        assert plain_value("f", value) is value


def test_field_names_are_checked() -> None:
    for field in ("", "$where", "a\x00b"):
        with pytest.raises(FilterValueError, match="not a filterable field name"):
            equals(field, "x")
