import asyncio
import time
from typing import Any

import httpx
from fastapi.testclient import TestClient
from redis.asyncio import Redis

from api.main import create_app
from scripts.devstack import Service, free_port
from shared.records import EventRecord, utc_now_ms
from shared.settings import Settings
from shared.stream import append_record
from tests.conftest import make_settings
from tests.export_helpers import event, ids, insert, query
from tests.helpers import drain, names_for

MAX_PAGES = 50


def get_page(client: TestClient, headers: dict, **params: Any) -> httpx.Response:
    response = client.get("/export_data", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return response


def page_through(client: TestClient, headers: dict, cursor: str | None = None, **params: Any) -> tuple[list[str], str | None]:
    seen: list[str] = []
    for _ in range(MAX_PAGES):
        response = get_page(client, headers, **params, **({"cursor": cursor} if cursor else {}))
        seen += ids(response.json())
        cursor = response.headers.get("x-next-cursor", cursor)
        if response.headers["x-has-more"] == "false":
            return seen, cursor
    raise AssertionError("paging did not finish")


def test_pages_cover_every_record_once_in_order(client: TestClient, settings: Settings, admin_headers: dict) -> None:
    insert(settings, *[event(f"e{i}", i // 2) for i in range(7)], *[query(f"q{i}", i) for i in range(3)])
    everything = ids(get_page(client, admin_headers).json())

    first = get_page(client, admin_headers, limit=3, settle_s=0)
    assert ids(first.json()) == everything[:3]
    assert first.headers["x-has-more"] == "true"
    assert first.headers["x-settled-before"].endswith("Z")

    seen, cursor = page_through(client, admin_headers, first.headers["x-next-cursor"], limit=3, settle_s=0)
    assert everything[:3] + seen == everything

    again = get_page(client, admin_headers, limit=3, settle_s=0, cursor=cursor)
    assert again.json() == []
    assert (again.headers["x-has-more"], again.headers["x-next-cursor"]) == ("false", cursor)


def test_a_page_of_nothing_has_no_cursor(client: TestClient, admin_headers: dict) -> None:
    response = get_page(client, admin_headers, limit=5, settle_s=0)

    assert response.json() == []
    assert response.headers["x-has-more"] == "false"
    assert "x-next-cursor" not in response.headers


def test_cursor_without_limit_reads_to_the_end_and_formats_agree(client: TestClient, settings: Settings,
                                                                  admin_headers: dict) -> None:
    insert(settings, *[event(f"e{i}", i) for i in range(6)])
    cursor = get_page(client, admin_headers, limit=2, settle_s=0).headers["x-next-cursor"]

    rest = get_page(client, admin_headers, cursor=cursor, settle_s=0)
    as_csv = get_page(client, admin_headers, cursor=cursor, settle_s=0, format="csv")

    assert ids(rest.json()) == ["e2", "e3", "e4", "e5"]
    assert [line.split(",")[1] for line in as_csv.text.splitlines()[1:]] == ["e2", "e3", "e4", "e5"]
    assert rest.headers["x-next-cursor"] == as_csv.headers["x-next-cursor"]


def test_paging_while_writes_continue_skips_and_repeats_nothing(client: TestClient, settings: Settings,
                                                                admin_headers: dict) -> None:
    sent: list[str] = []
    seen: list[str] = []
    cursor = None
    for round_ in range(8):
        for n in range(3):
            body = {"user_id": f"u{n}", "event_type": f"r{round_}"}
            sent.append(client.post("/log_event", json=body).json()["id"])
        if round_ % 3 != 2:  # some rounds leave records waiting in the stream, not yet in MongoDB
            drain(settings)
        response = get_page(client, admin_headers, limit=4, settle_s=0, **({"cursor": cursor} if cursor else {}))
        seen += ids(response.json())
        cursor = response.headers.get("x-next-cursor", cursor)
    drain(settings)
    rest, _ = page_through(client, admin_headers, cursor, limit=4, settle_s=0)
    seen += rest

    assert len(seen) == len(set(seen)) == 24
    assert seen == ids(get_page(client, admin_headers).json())
    assert sorted(seen) == sorted(sent)


def test_settle_margin_waits_for_a_request_still_in_flight(client: TestClient, settings: Settings,
                                                           admin_headers: dict) -> None:
    # Stamped on arrival like a /query still waiting on the LLM: it reaches Redis only later.
    in_flight = EventRecord(id="late", timestamp=utc_now_ms(), user_id="u", event_type="slow")
    time.sleep(0.05)
    stored_after = client.post("/log_event", json={"user_id": "u", "event_type": "fast"}).json()["id"]
    drain(settings)

    first = get_page(client, admin_headers, limit=10, settle_s=1)
    assert first.json() == []  # the fast event is younger than the margin, so the page stops before both

    _append(settings, in_flight)
    drain(settings)
    time.sleep(1.1)
    seen, _ = page_through(client, admin_headers, limit=10, settle_s=1)
    assert seen == ["late", stored_after]


def test_paging_needs_redis_to_know_what_is_settled(redis_server: Service, mongo_server: Service,
                                                     admin_headers: dict) -> None:
    settings = make_settings(redis_server, mongo_server, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    insert(settings, event("e1", 0))
    with TestClient(create_app(settings)) as client:
        paged = client.get("/export_data", headers=admin_headers, params={"limit": 1})
        whole = client.get("/export_data", headers=admin_headers)

    assert paged.status_code == 503
    assert "Redis is unavailable" in paged.json()["error"]
    assert paged.headers["retry-after"] == str(settings.RETRY_AFTER_S)
    assert ids(whole.json()) == ["e1"]


def _append(settings: Settings, record: EventRecord) -> None:
    async def run() -> None:
        redis = Redis.from_url(settings.REDIS_URL)
        try:
            await append_record(redis, names_for(settings).records, record)
        finally:
            await redis.aclose()

    asyncio.run(run())
