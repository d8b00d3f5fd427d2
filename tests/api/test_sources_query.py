"""/query with each sources provider: what the model was shown, the response's `source`, and the stored record."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.sources import SourcesConfigError
from scripts.devstack import Service
from shared.settings import Settings
from tests.conftest import make_settings
from tests.experiment_helpers import write_experiment
from tests.helpers import drain, stored
from tests.search_stub import CITED, RESULTS, SearchStub, search_stub

QUERY = {"user_id": "user_123", "session_id": "session_abc", "query": "Which boots for a wet hike?"}
BOOTS = [
    {"title": "Boots A", "url": "https://a.example/boots", "content": "Light and dry."},
    {"title": "Boots B", "url": "https://b.example/boots", "content": "Warm."},
]


@pytest.fixture(scope="module")
def stub() -> Iterator[SearchStub]:
    with search_stub() as running:
        yield running


@pytest.fixture
def sources_file(tmp_path: Path) -> Path:
    path = tmp_path / "sources.json"
    path.write_text(json.dumps({"sets": {"boots": BOOTS}, "rules": [{"pattern": "boots?", "set": "boots"}]}))
    return path


def app_settings(redis: Service, mongo: Service, stub: SearchStub, **overrides: object) -> Settings:
    # The LLM is the stub's OpenAI-style web-search model, so the test sees the messages it was sent.
    return make_settings(redis, mongo, LLM_MOCK=False, LLM_API_BASE=f"{stub.base_url}/openai/v1",
                         LLM_API_KEY="stub-key", LITELLM_MODEL="openai/stub-model", **overrides)


def ask(settings: Settings) -> tuple[int, dict, dict]:
    with TestClient(create_app(settings)) as client:
        response = client.post("/query", json=QUERY)
    drain(settings)
    [document] = stored(settings, "queries")
    return response.status_code, response.json(), document


def system_message_sent(stub: SearchStub) -> str:
    [chat] = [r for r in stub.requests if r.path.startswith("/openai/")]
    return chat.body["messages"][0]["content"]


def test_static_sources_are_shown_numbered_returned_and_stored_alike(
    redis_server: Service, mongo_server: Service, stub: SearchStub, sources_file: Path
) -> None:
    stub.requests.clear()
    settings = app_settings(redis_server, mongo_server, stub, SOURCES_PROVIDER="static", SOURCES_FILE=str(sources_file))

    status, body, document = ask(settings)

    assert status == 200
    expected = [{**BOOTS[0], "rank": 1}, {**BOOTS[1], "rank": 2}]
    assert body["source"] == expected
    assert document["source"] == expected
    assert document["sources_provider"] == "static"
    assert system_message_sent(stub).endswith(
        "[1] Boots A — https://a.example/boots — Light and dry.\n[2] Boots B — https://b.example/boots — Warm."
    )


def test_searched_sources_are_returned_and_stored_alike(
    redis_server: Service, mongo_server: Service, stub: SearchStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub.requests.clear()
    monkeypatch.setenv("TAVILY_API_KEY", "stub-tavily-key")
    monkeypatch.setenv("TAVILY_API_BASE", f"{stub.base_url}/ok")
    settings = app_settings(redis_server, mongo_server, stub, SOURCES_PROVIDER="tavily", SOURCES_MAX=2)

    status, body, document = ask(settings)

    assert status == 200
    expected = [{**r, "rank": rank} for rank, r in enumerate(RESULTS[:2], start=1)]
    assert body["source"] == document["source"] == expected
    assert f"[2] arq — {RESULTS[1]['url']} — {RESULTS[1]['content']}" in system_message_sent(stub)


def test_a_failing_search_is_a_502_and_the_attempt_is_logged(
    redis_server: Service, mongo_server: Service, stub: SearchStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub.requests.clear()
    monkeypatch.setenv("TAVILY_API_KEY", "stub-tavily-key")
    monkeypatch.setenv("TAVILY_API_BASE", f"{stub.base_url}/fail")
    settings = app_settings(redis_server, mongo_server, stub, SOURCES_PROVIDER="tavily")

    status, body, document = ask(settings)

    assert status == 502
    assert body == {"error": "search provider 'tavily' failed (InternalServerError, upstream status 500)"}
    assert document["error"] == body["error"]
    assert document["source"] == []
    assert not [r for r in stub.requests if r.path.startswith("/openai/")]  # no sources, no LLM call


def test_without_a_provider_the_web_search_models_citations_are_the_sources(
    redis_server: Service, mongo_server: Service, stub: SearchStub
) -> None:
    stub.requests.clear()
    settings = app_settings(redis_server, mongo_server, stub, SOURCES_PROVIDER="none")

    status, body, document = ask(settings)

    assert status == 200
    expected = [{**r, "content": "", "rank": rank} for rank, r in enumerate(CITED, start=1)]
    assert body["source"] == document["source"] == expected
    assert "[1]" not in system_message_sent(stub)


def test_a_bad_sources_file_stops_the_api_at_startup(redis_server: Service, mongo_server: Service, tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"sets": {"a": []}, "default": "b"}')
    settings = make_settings(redis_server, mongo_server, SOURCES_PROVIDER="static", SOURCES_FILE=str(path))

    with pytest.raises(SourcesConfigError, match="default names set 'b'"), TestClient(create_app(settings)):
        pass


def test_an_arm_naming_an_unknown_source_set_stops_the_api_at_startup(
    redis_server: Service, mongo_server: Service, tmp_path: Path,
) -> None:
    sources = tmp_path / "sources.json"
    sources.write_text('{"sets": {"a": [{"title": "A", "url": "https://a.example"}]}}')
    arms = [{"name": "control", "weight": 1}, {"name": "curated", "weight": 1, "source_set": "missing"}]
    experiment = write_experiment(tmp_path, "exp-sets", arms)
    settings = make_settings(redis_server, mongo_server, SOURCES_PROVIDER="static", SOURCES_FILE=str(sources),
                             EXPERIMENT_FILE=str(experiment))

    with pytest.raises(SourcesConfigError, match="arm 'curated'.*'missing'"), TestClient(create_app(settings)):
        pass
