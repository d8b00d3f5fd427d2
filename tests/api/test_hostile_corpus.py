"""Every input of tests/corpus/hostile_inputs.py gets its expected answer, and the queue is never poisoned.

Refused: a JSON error that says why (naming the field for a 422), nothing queued, and the next valid
event is stored. Accepted: the record in MongoDB, and in the export, holds every field exactly as sent.
"""

import math
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pymongo import MongoClient

from api.main import create_app
from scripts.devstack import Service
from shared.settings import Settings
from tests.conftest import ADMIN_KEY, make_settings
from tests.corpus.hostile_inputs import ACCEPTED, REFUSED, Case
from tests.helpers import drain, stream_length

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


class Corpus:
    def __init__(self, client: TestClient, settings: Settings, mongo: MongoClient) -> None:
        self.client = client
        self.settings = settings
        self.db = mongo[settings.MONGO_DB]

    def send(self, case: Case) -> Any:
        return self.client.post(case.path, content=case.body, headers=case.headers)

    def count(self) -> int:
        return sum(self.db[name].count_documents({}) for name in ("events", "queries"))


@pytest.fixture(scope="module")
def corpus(redis_server: Service, mongo_server: Service) -> Iterator[Corpus]:
    settings = make_settings(redis_server, mongo_server)
    mongo = MongoClient(settings.MONGODB_URI)
    try:
        with TestClient(create_app(settings)) as client:
            yield Corpus(client, settings, mongo)
    finally:
        mongo.close()


def assert_identical(actual: Any, expected: Any, where: str) -> None:
    """Equal, and also same types, float signs and key order: 1 is not 1.0, -0.0 is not 0.0."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), where
        assert list(actual) == list(expected), f"{where}: keys differ or changed order"
        for key, value in expected.items():
            assert_identical(actual[key], value, f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), where
        for i, (got, want) in enumerate(zip(actual, expected, strict=True)):
            assert_identical(got, want, f"{where}[{i}]")
    elif isinstance(expected, float):
        assert type(actual) is float and actual == expected, f"{where}: {actual!r} != {expected!r}"
        assert math.copysign(1, actual) == math.copysign(1, expected), f"{where}: sign of zero lost"
    elif isinstance(expected, bool) or expected is None or isinstance(expected, str):
        assert type(actual) is type(expected) and actual == expected, f"{where}: {actual!r} != {expected!r}"
    else:
        assert isinstance(actual, int) and not isinstance(actual, bool) and actual == expected, where


def assert_fields_as_sent(record: dict[str, Any], sent: dict[str, Any]) -> None:
    for key, value in sent.items():
        assert key in record, f"{key} missing"
        assert_identical(record[key], value, key)


@pytest.mark.parametrize("case", REFUSED, ids=[c.name for c in REFUSED])
def test_refused_input_gets_a_clear_json_error_and_does_not_poison_the_queue(corpus: Corpus, case: Case) -> None:
    stored_before = corpus.count()

    response = corpus.send(case)

    assert response.status_code == case.status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert case.error in body["error"], body
    assert "Traceback" not in response.text and len(body["error"]) < 300
    if case.field is not None:
        assert case.field in [f["field"] for f in body["fields"]], body
    assert stream_length(corpus.settings) == 0  # nothing was queued

    follow_up = corpus.client.post("/log_event", json={"user_id": "next", "event_type": "ok",
                                                      "extra_data": {"after": case.name}})
    assert follow_up.status_code == 202
    drain(corpus.settings)
    assert corpus.count() == stored_before + 1
    stored = corpus.db["events"].find_one({"_id": follow_up.json()["id"]})
    assert stored is not None and stored["extra_data"] == {"after": case.name}


@pytest.mark.parametrize("case", ACCEPTED, ids=[c.name for c in ACCEPTED])
def test_accepted_input_is_stored_exactly_as_sent(corpus: Corpus, case: Case) -> None:
    response = corpus.send(case)

    assert response.status_code == case.status, response.text
    record_id = response.json()["query_id" if case.path == "/query" else "id"]
    drain(corpus.settings)
    collection = "queries" if case.path == "/query" else "events"
    document = corpus.db[collection].find_one({"_id": record_id})
    assert document is not None
    assert case.sent is not None
    assert_fields_as_sent(document, case.sent)


def test_export_returns_every_accepted_input_exactly_as_sent(redis_server: Service, mongo_server: Service) -> None:
    settings = make_settings(redis_server, mongo_server)
    with TestClient(create_app(settings)) as client:
        sent: dict[str, dict[str, Any]] = {}
        for case in ACCEPTED:
            response = client.post(case.path, content=case.body, headers=case.headers)
            assert response.status_code == case.status, (case.name, response.text)
            assert case.sent is not None
            sent[response.json()["query_id" if case.path == "/query" else "id"]] = case.sent
        drain(settings)

        exported = {record["id"]: record for record in client.get("/export_data", headers=ADMIN).json()}

    assert set(exported) == set(sent)
    for record_id, fields in sent.items():
        assert_fields_as_sent(exported[record_id], fields)
