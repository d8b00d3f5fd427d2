"""`POST /query` as server-sent events, through LiteLLM's real streaming path against the local stub.

A client that leaves mid-stream needs a real server to leave: see tests/test_e2e_llm.py.
"""

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from scripts.devstack import Service
from shared.settings import Settings
from tests.api.conftest import PRICED, expected_cost, stub_settings
from tests.helpers import drain, stored, stream_length
from tests.llm_stub import ANSWER, COMPLETION_TOKENS, PROMPT_TOKENS, Behaviour, LlmStub
from tests.sse import last, names, parse_events, streamed_text

QUERY = {"user_id": "user_123", "session_id": "session_abc", "query": "How do Redis streams work?", "stream": True}
SSE = {"Accept": "text/event-stream"}


def post(settings: Settings, body: dict = QUERY, headers: dict | None = None):  # noqa: ANN201 - httpx.Response
    with TestClient(create_app(settings)) as client:
        return client.post("/query", json=body, headers=headers)


def test_events_come_in_order_with_usage_and_cost_at_the_end(
    redis_server: Service, mongo_server: Service, stub: LlmStub,
) -> None:
    settings = stub_settings(redis_server, mongo_server, stub, LITELLM_MODEL=PRICED)

    response = post(settings)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    events = parse_events(response.text)
    assert names(events) == ["start", "delta", "done"]
    start, done = events[0][1], last(events, "done")
    assert set(start) == {"query_id", "model_used", "experiment", "arm", "source"}
    assert streamed_text(events) == ANSWER == done["response"]
    assert len([e for e in events if e[0] == "delta"]) == len(ANSWER.split())  # one per stub token
    assert done["query_id"] == start["query_id"]
    assert (done["model_used"], done["finish_reason"]) == (PRICED, "stop")
    assert (done["prompt_tokens"], done["completion_tokens"]) == (PROMPT_TOKENS, COMPLETION_TOKENS)
    assert done["cost_usd"] == pytest.approx(expected_cost())
    assert 0 < done["ttft_ms"] <= done["latency_ms"]
    assert stub.requests[-1]["stream_options"] == {"include_usage": True}


def test_the_stream_is_logged_once_with_what_was_shown(
    redis_server: Service, mongo_server: Service, stub: LlmStub,
) -> None:
    settings = stub_settings(redis_server, mongo_server, stub, LITELLM_MODEL=PRICED)

    events = parse_events(post(settings).text)

    done = last(events, "done")
    assert stream_length(settings) == 1  # one stream entry: the record is written once
    drain(settings)
    [document] = stored(settings, "queries")
    assert document["_id"] == done["query_id"]
    assert (document["response"], document["source"]) == (done["response"], done["source"])
    assert (document["streamed"], document["aborted"]) == (True, False)
    assert (document["ttft_ms"], document["latency_ms"]) == (done["ttft_ms"], done["latency_ms"])
    assert (document["prompt_tokens"], document["completion_tokens"]) == (PROMPT_TOKENS, COMPLETION_TOKENS)
    assert document["cost_usd"] == done["cost_usd"]
    assert document["finish_reason"] == "stop"
    assert "error" not in document


def test_accept_header_asks_for_a_stream_and_the_body_flag_wins(
    redis_server: Service, mongo_server: Service, stub: LlmStub,
) -> None:
    settings = stub_settings(redis_server, mongo_server, stub)
    body = {k: v for k, v in QUERY.items() if k != "stream"}

    by_header = post(settings, body, SSE)
    refused_in_body = post(settings, {**body, "stream": False}, SSE)

    assert names(parse_events(by_header.text)) == ["start", "delta", "done"]
    assert refused_in_body.headers["content-type"] == "application/json"
    assert refused_in_body.json()["response"] == ANSWER


def test_fallback_serves_the_stream_when_the_primary_fails(
    redis_server: Service, mongo_server: Service, stub: LlmStub,
) -> None:
    stub.behave("primary", status=500)
    settings = stub_settings(redis_server, mongo_server, stub, LLM_FALLBACKS=PRICED)

    events = parse_events(post(settings).text)

    assert events[0][1]["model_used"] == last(events, "done")["model_used"] == PRICED
    assert streamed_text(events) == ANSWER
    drain(settings)
    [document] = stored(settings, "queries")
    assert (document["model_requested"], document["model_used"]) == ("openai/primary", PRICED)


@pytest.mark.parametrize(("behaviour", "status", "error"), [
    ({"status": 500}, 502, "the LLM provider failed: InternalServerError"),
    ({"status": 429, "retry_after_s": 3}, 429, "the LLM provider is rate limiting requests; retry later"),
    ({"first_token_delay_s": 3}, 504, "the LLM did not answer within 0.5 s"),
], ids=["upstream-500", "rate-limited", "no-first-token"])
def test_failure_before_the_first_token_is_a_json_error_and_logged(
    redis_server: Service, mongo_server: Service, stub: LlmStub, behaviour: dict, status: int, error: str,
) -> None:
    stub.behave("primary", **behaviour)
    settings = stub_settings(redis_server, mongo_server, stub, LLM_TIMEOUT_S=0.5)

    response = post(settings)

    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": error}
    if status == 429:
        assert response.headers["retry-after"] == "3"
    drain(settings)
    [document] = stored(settings, "queries")
    assert (document["error"], document["response"], document["streamed"]) == (error, None, True)


def test_a_stream_cut_after_it_started_ends_with_an_error_event_and_logs_the_partial_answer(
    redis_server: Service, mongo_server: Service, stub: LlmStub,
) -> None:
    stub.behave("primary", cut_after_tokens=2)
    settings = stub_settings(redis_server, mongo_server, stub)

    events = parse_events(post(settings).text)

    assert names(events) == ["start", "delta", "error"]
    error = last(events, "error")
    assert (error["status"], error["query_id"]) == (502, events[0][1]["query_id"])
    partial = streamed_text(events)
    assert partial == "".join(Behaviour().tokens[:2])
    drain(settings)
    [document] = stored(settings, "queries")
    assert (document["response"], document["error"]) == (partial, error["error"])
    assert (document["streamed"], document["aborted"]) == (True, False)
    assert document["prompt_tokens"] is None and document["cost_usd"] is None  # never reported: not guessed


def test_a_stream_that_outlasts_the_timeout_ends_with_a_504_event(
    redis_server: Service, mongo_server: Service, stub: LlmStub,
) -> None:
    stub.behave("primary", token_delay_s=0.5)
    settings = stub_settings(redis_server, mongo_server, stub, LLM_TIMEOUT_S=1)

    events = parse_events(post(settings).text)

    assert names(events) == ["start", "delta", "error"]
    assert last(events, "error")["status"] == 504
    assert ANSWER.startswith(streamed_text(events)) and streamed_text(events) != ANSWER
    drain(settings)
    [document] = stored(settings, "queries")
    assert document["error"] == "the LLM did not answer within 1 s"
    assert document["response"] == streamed_text(events)


def test_mock_mode_streams_a_labelled_answer(client: TestClient, settings: Settings) -> None:
    response = client.post("/query", json=QUERY)

    events = parse_events(response.text)
    assert names(events) == ["start", "delta", "done"]
    done = last(events, "done")
    assert done["model_used"] == "mock:gpt-4o-mini"
    assert done["cost_usd"] == 0.0
    assert streamed_text(events) == done["response"] and "mock answer" in done["response"]
    drain(settings)
    [document] = stored(settings, "queries")
    assert (document["model_used"], document["streamed"]) == ("mock:gpt-4o-mini", True)
