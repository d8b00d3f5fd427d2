import csv
import gzip
import io
import json
import re

import httpx
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from scripts.devstack import Service, free_port
from shared.export_csv import FIXED_COLUMNS, TAIL_COLUMNS
from shared.settings import Settings
from tests.conftest import make_settings
from tests.export_helpers import event, ids, insert, query

IDENTITY = {"Accept-Encoding": "identity"}
HEADER = [*FIXED_COLUMNS, "extra_data", *TAIL_COLUMNS]


@pytest.fixture
def headers(admin_headers: dict[str, str]) -> dict[str, str]:
    return admin_headers | IDENTITY


@pytest.fixture
def three(settings: Settings) -> None:
    insert(settings,
           event("e1", 0, extra_data={"pos": 1, "nested": {"a": 1}}, target_url="https://x.test/a"),
           query("q1", 1, prompt_tokens=3, completion_tokens=4, cost_usd=0.25,
                 source=[{"title": "T", "url": "https://x.test/t"}]),
           event("e2", 2, query_id="q1", event_type="scroll", client_timestamp=123, plan="B"))


def export(client: TestClient, headers: dict[str, str], **params: object) -> httpx.Response:
    response = client.get("/export_data", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return response


def test_json_is_the_default_and_keeps_its_shape(client: TestClient, headers: dict, three: None) -> None:
    response = export(client, headers)

    assert response.headers["content-type"] == "application/json"
    assert re.fullmatch(r'attachment; filename="llm-export-\d{8}T\d{6}Z\.json"',
                        response.headers["content-disposition"])
    records = response.json()
    assert ids(records) == ["e1", "q1", "e2"]
    assert records[0] == {"type": "event", "id": "e1", "timestamp": "2025-03-01T12:00:00.000Z", "user_id": "u1",
                          "event_type": "click", "session_id": "s1", "target_url": "https://x.test/a",
                          "extra_data": {"pos": 1, "nested": {"a": 1}}}


def test_ndjson_is_one_record_per_line(client: TestClient, headers: dict, three: None) -> None:
    response = export(client, headers, format="ndjson")

    assert response.headers["content-type"] == "application/x-ndjson"
    assert response.headers["content-disposition"].endswith('.ndjson"')
    lines = response.content.split(b"\n")
    assert lines[-1] == b""
    assert [json.loads(line) for line in lines[:-1]] == export(client, headers).json()


def test_csv_has_the_fixed_columns_then_extra_data_as_json(client: TestClient, headers: dict, three: None) -> None:
    response = export(client, headers, format="csv")

    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"].endswith('.csv"')
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert list(rows[0]) == HEADER
    assert [r["id"] for r in rows] == ["e1", "q1", "e2"]
    e1, q1, e2 = rows
    assert json.loads(e1["extra_data"]) == {"pos": 1, "nested": {"a": 1}}
    assert (e1["timestamp"], e1["target_url"], e1["response"], e1["query_id"]) == \
        ("2025-03-01T12:00:00.000Z", "https://x.test/a", "", "")
    assert (q1["type"], q1["query_id"], q1["latency_ms"], q1["prompt_tokens"], q1["cost_usd"]) == \
        ("query", "q1", "1.5", "3", "0.25")
    assert json.loads(q1["source"]) == [{"title": "T", "url": "https://x.test/t"}]
    assert (e2["query_id"], e2["event_type"], e2["client_timestamp"]) == ("q1", "scroll", "123")
    assert json.loads(e2["other_fields"]) == {"plan": "B"}


def test_csv_flatten_makes_one_column_per_extra_data_path(client: TestClient, headers: dict, three: None) -> None:
    rows = list(csv.DictReader(io.StringIO(export(client, headers, format="csv", flatten="true").text)))

    assert list(rows[0]) == [*FIXED_COLUMNS, "extra_data.nested.a", "extra_data.pos", *TAIL_COLUMNS]
    assert (rows[0]["extra_data.nested.a"], rows[0]["extra_data.pos"]) == ("1", "1")
    assert (rows[1]["extra_data.pos"], rows[2]["extra_data.pos"]) == ("", "")


def test_csv_flatten_keeps_both_values_when_a_dotted_key_meets_a_nested_one(
        client: TestClient, headers: dict, settings: Settings) -> None:
    extra = {"a.b": 1, "a": {"b": 3}, "c": 2}
    insert(settings, event("e1", 0, extra_data=extra))

    [row] = csv.DictReader(io.StringIO(export(client, headers, format="csv", flatten="true").text))

    assert (row["extra_data.a.b"], row["extra_data.c"]) == ("1", "2")
    assert json.loads(row["other_fields"]) == {"extra_data": extra}  # the 3 is not lost, nor which key held what


TRICKY = {
    "comma": "a, b, c", "quotes": 'she said "hi"', "newlines": "line1\nline2\r\nline3",
    "unicode": "日本語 👩🏽‍🔬 مرحبا e\u0301", "leading_space": "  x", "formula": "=1+1",
}


def test_csv_with_hard_text_reads_back_in_csv_and_pandas(client: TestClient, headers: dict, settings: Settings) -> None:
    insert(settings, event("e1", 0, query=TRICKY["newlines"], page_url=TRICKY["comma"], extra_data=TRICKY),
           query("q1", 1, query=TRICKY["quotes"], response=TRICKY["unicode"]))
    body = export(client, headers, format="csv").content

    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8"), newline="")))
    assert (rows[0]["query"], rows[0]["page_url"]) == (TRICKY["newlines"], TRICKY["comma"])
    assert json.loads(rows[0]["extra_data"]) == TRICKY
    assert (rows[1]["query"], rows[1]["response"]) == (TRICKY["quotes"], TRICKY["unicode"])

    frame = pd.read_csv(io.BytesIO(body), dtype=str, keep_default_na=False)
    assert list(frame.columns) == HEADER
    assert list(frame["id"]) == ["e1", "q1"]
    assert frame.loc[0, "query"] == TRICKY["newlines"]
    assert frame.loc[1, "response"] == TRICKY["unicode"]
    assert json.loads(frame.loc[0, "extra_data"]) == TRICKY

    flat = pd.read_csv(io.BytesIO(export(client, headers, format="csv", flatten="true").content),
                       dtype=str, keep_default_na=False)
    assert {name: flat.loc[0, f"extra_data.{name}"] for name in TRICKY} == TRICKY


@pytest.mark.parametrize("fmt", ["json", "ndjson", "csv"])
def test_gzip_only_when_the_client_accepts_it(client: TestClient, admin_headers: dict, three: None, fmt: str) -> None:
    plain = client.get("/export_data", params={"format": fmt}, headers=admin_headers | IDENTITY)
    with client.stream("GET", "/export_data", params={"format": fmt},
                       headers=admin_headers | {"Accept-Encoding": "gzip"}) as zipped:
        raw = b"".join(zipped.iter_raw())

    assert "content-encoding" not in plain.headers
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["vary"] == "Accept-Encoding"
    assert gzip.decompress(raw) == plain.content


def test_empty_exports_are_valid_files(client: TestClient, headers: dict) -> None:
    assert export(client, headers).json() == []
    assert export(client, headers, format="ndjson").content == b""
    assert export(client, headers, format="csv").text == ",".join(HEADER) + "\r\n"


def test_mongodb_down_is_a_503_before_any_byte(redis_server: Service, mongo_server: Service,
                                               admin_headers: dict) -> None:
    settings = make_settings(redis_server, mongo_server, MONGO_TIMEOUT_MS=300,
                             MONGODB_URI=f"mongodb://127.0.0.1:{free_port()}/?directConnection=true")
    with TestClient(create_app(settings)) as client:
        response = client.get("/export_data", headers=admin_headers, params={"format": "csv"})

    assert response.status_code == 503
    assert response.json() == {"error": "MongoDB is unavailable; retry later"}
    assert response.headers["retry-after"] == str(settings.RETRY_AFTER_S)
