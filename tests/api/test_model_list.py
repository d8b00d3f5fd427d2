"""LLM_MODEL_LIST (deployments with their own base URLs, keys and mock responses) and the pace of mock streams,
through LiteLLM's real HTTP path against the local stub."""

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from api.llm import MOCK_TEXT, LlmClient
from api.main import create_app
from api.model_list import ModelListError
from scripts.devstack import Service, free_port
from shared.settings import Settings
from tests.conftest import make_settings
from tests.helpers import drain, stored
from tests.llm_stub import ANSWER, LlmStub
from tests.sse import last, names, parse_events, streamed_text

QUERY = {"user_id": "user_123", "session_id": "session_abc", "query": "How do Redis streams work?"}
CANNED = "A canned answer from a deployment's own mock_response, long enough to come in several chunks."


def dead_base() -> str:
    """A base URL nothing listens on: the connection is refused at once."""
    return f"http://127.0.0.1:{free_port()}/v1"


def write_list(tmp_path: Path, deployments: list[dict[str, Any]], name: str = "models.yaml") -> str:
    path = tmp_path / name
    dump = json.dumps if name.endswith(".json") else yaml.safe_dump
    path.write_text(dump({"model_list": deployments}), encoding="utf-8")
    return str(path)


def deployment(model_name: str, model: str, **params: Any) -> dict[str, Any]:
    return {"model_name": model_name, "litellm_params": {"model": model, **params}}


def listed_settings(redis: Service, mongo: Service, model_list: str, **overrides: object) -> Settings:
    """A real LLM configuration from a model list; no retries, mock mode left to the model list."""
    values: dict[str, object] = {"LLM_MOCK": None, "LLM_MODEL_LIST": model_list, "LITELLM_MODEL": "primary",
                                 "LLM_NUM_RETRIES": 0, **overrides}
    return make_settings(redis, mongo, **values)


def post(settings: Settings, body: dict) -> Any:  # noqa: ANN401 - httpx.Response
    with TestClient(create_app(settings)) as client:
        return client.post("/query", json=body)


@pytest.fixture
def dead_primary_list(tmp_path: Path, stub: LlmStub, monkeypatch: pytest.MonkeyPatch) -> str:
    """primary at a dead port; backup on the stub (its key from the environment); canned answers by itself."""
    monkeypatch.setenv("STUB_BACKUP_KEY", "key-from-the-environment")
    return write_list(tmp_path, [
        deployment("primary", "openai/primary", api_base=dead_base(), api_key="unused"),
        deployment("backup", "openai/backup", api_base=f"{stub.url}/v1", api_key="os.environ/STUB_BACKUP_KEY"),
        deployment("canned", "openai/canned", mock_response=CANNED),
    ])


@pytest.mark.parametrize("streamed", [False, True])
def test_fallback_at_another_base_url_answers_for_a_dead_primary(
    redis_server: Service, mongo_server: Service, stub: LlmStub, dead_primary_list: str, streamed: bool,
) -> None:
    settings = listed_settings(redis_server, mongo_server, dead_primary_list, LLM_FALLBACKS="backup")

    response = post(settings, {**QUERY, "stream": streamed})

    assert response.status_code == 200
    result = last(parse_events(response.text), "done") if streamed else response.json()
    assert (result["response"], result["model_used"]) == (ANSWER, "openai/backup")
    assert stub.authorizations == ["Bearer key-from-the-environment"]  # os.environ/ resolved by LiteLLM
    drain(settings)
    [document] = stored(settings, "queries")
    assert (document["model_requested"], document["model_used"], document["streamed"]) == (
        "primary", "openai/backup", streamed)
    assert "error" not in document


@pytest.mark.parametrize("streamed", [False, True])
def test_a_mock_response_deployment_is_labelled_mock(
    redis_server: Service, mongo_server: Service, stub: LlmStub, dead_primary_list: str, streamed: bool,
) -> None:
    stub.behave("backup", status=500)
    settings = listed_settings(redis_server, mongo_server, dead_primary_list, LLM_FALLBACKS="backup, canned")

    response = post(settings, {**QUERY, "stream": streamed})

    assert response.status_code == 200
    result = last(parse_events(response.text), "done") if streamed else response.json()
    assert (result["response"], result["model_used"]) == (CANNED, "mock:openai/canned")
    assert stub.calls("backup") == 1
    drain(settings)
    [document] = stored(settings, "queries")
    assert (document["model_used"], document["cost_usd"]) == ("mock:openai/canned", 0.0)


def test_a_model_list_is_not_mock_mode_and_a_real_deployment_is_not_labelled(
    redis_server: Service, mongo_server: Service, stub: LlmStub, tmp_path: Path,
) -> None:
    model_list = write_list(tmp_path, [deployment("primary", "openai/primary", api_base=f"{stub.url}/v1",
                                                  api_key="k")], name="models.json")
    settings = listed_settings(redis_server, mongo_server, model_list)

    with TestClient(create_app(settings)) as client:
        status = client.get("/status").json()
        body = client.post("/query", json=QUERY).json()

    assert (status["llm_mock"], status["model"]) == (False, "primary")
    assert (body["response"], body["model_used"]) == (ANSWER, "openai/primary")


def test_llm_mock_true_still_mocks_every_model_of_the_list(
    redis_server: Service, mongo_server: Service, stub: LlmStub, dead_primary_list: str,
) -> None:
    settings = listed_settings(redis_server, mongo_server, dead_primary_list, LLM_MOCK=True)

    body = post(settings, QUERY).json()

    assert (body["response"], body["model_used"]) == (MOCK_TEXT, "mock:openai/primary")
    assert stub.requests == []


@pytest.mark.parametrize(("overrides", "arms", "message"), [
    ({"LITELLM_MODEL": "gpt-4o"}, [],
     "has no model_name 'gpt-4o' (LITELLM_MODEL); its models are: backup, canned, primary"),
    ({"LLM_FALLBACKS": "backup, spare"}, [], "has no model_name 'spare' (LLM_FALLBACKS)"),
    ({}, ["arm-model"], "has no model_name 'arm-model' (an experiment arm)"),
])
def test_a_model_missing_from_the_list_stops_startup(
    redis_server: Service, mongo_server: Service, dead_primary_list: str,
    overrides: dict, arms: list[str], message: str,
) -> None:
    settings = listed_settings(redis_server, mongo_server, dead_primary_list, **overrides)

    with pytest.raises(ModelListError) as raised:
        LlmClient(settings, models=arms)

    assert str(raised.value).startswith(f"LLM_MODEL_LIST {dead_primary_list} {message}")


@pytest.mark.parametrize(("name", "content", "problem"), [
    ("models.yaml", "model_list: [", " is not valid YAML"),
    ("models.json", "{", " is not valid JSON"),
    ("models.txt", "model_list: []", ": the name must end in .yaml, .yml or .json"),
    ("models.yaml", "router_settings: {}", " is invalid: model_list: Field required"),
    ("models.yaml", "model_list: []", " is invalid: model_list: List should have at least 1 item"),
    ("models.yaml", "model_list: [{model_name: primary, litellm_params: {api_base: x}}]",
     " is invalid: model_list.0.litellm_params.model: Field required"),
    ("models.yaml", "model_list: [{model_name: primary, litellm_params: {model: x, api_key: os.environ/UNSET_1}}]",
     " is invalid: model_list.0.litellm_params.api_key (primary) reads UNSET_1 from the environment, which is not set"),
])
def test_an_invalid_file_stops_startup_naming_it(
    redis_server: Service, mongo_server: Service, tmp_path: Path, name: str, content: str, problem: str,
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    settings = listed_settings(redis_server, mongo_server, str(path))

    with pytest.raises(ModelListError) as raised:
        create_app(settings)

    assert str(raised.value).startswith(f"LLM_MODEL_LIST {path}{problem}")


def test_a_missing_file_stops_startup(redis_server: Service, mongo_server: Service, tmp_path: Path) -> None:
    settings = listed_settings(redis_server, mongo_server, str(tmp_path / "absent.yaml"))

    with pytest.raises(ModelListError, match=r"absent.yaml cannot be read"):
        create_app(settings)


def test_a_deployment_litellm_refuses_stops_startup(
    redis_server: Service, mongo_server: Service, tmp_path: Path,
) -> None:
    model_list = write_list(tmp_path, [deployment("primary", "openai/primary", rpm="many")])

    with pytest.raises(ModelListError, match=r"models.yaml: LiteLLM refused a deployment: .*rpm"):
        LlmClient(listed_settings(redis_server, mongo_server, model_list))


def test_the_example_file_falls_back_to_its_mock_offline(redis_server: Service, mongo_server: Service) -> None:
    example = str(Path(__file__).resolve().parents[2] / "examples" / "model_list.yaml")
    settings = listed_settings(redis_server, mongo_server, example, LLM_FALLBACKS="backup")

    body = post(settings, QUERY).json()

    assert body["model_used"] == "mock:openai/backup-model"
    assert "fallback deployment `backup`" in body["response"]


def test_mock_streams_are_paced_between_chunks(redis_server: Service, mongo_server: Service) -> None:
    # A pause far beyond the call's timeout: the first chunk comes at once, the next one never in time.
    settings = make_settings(redis_server, mongo_server, LLM_MOCK_CHUNK_DELAY_MS=10_000, LLM_TIMEOUT_S=3)

    events = parse_events(post(settings, {**QUERY, "stream": True}).text)

    assert names(events) == ["start", "delta", "error"]
    assert last(events, "error")["status"] == 504
    assert MOCK_TEXT.startswith(streamed_text(events)) and streamed_text(events) != MOCK_TEXT


def test_real_streams_are_never_paced(
    redis_server: Service, mongo_server: Service, stub: LlmStub, tmp_path: Path,
) -> None:
    model_list = write_list(tmp_path, [deployment("primary", "openai/primary", api_base=f"{stub.url}/v1",
                                                  api_key="k")])
    settings = listed_settings(redis_server, mongo_server, model_list, LLM_MOCK_CHUNK_DELAY_MS=10_000,
                               LLM_TIMEOUT_S=3)

    events = parse_events(post(settings, {**QUERY, "stream": True}).text)

    assert names(events) == ["start", "delta", "done"]
    assert last(events, "done")["response"] == ANSWER
