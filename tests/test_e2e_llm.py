"""Streaming, disconnects and fallbacks as users meet them: uvicorn API and worker processes, real Redis and
wire-protocol MongoDB, and the LLM stub (in this process) answering LiteLLM's real HTTP calls.

A client that leaves mid-stream can only be tested with a real server: TestClient cannot really disconnect.
"""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml
from pymongo import MongoClient

from scripts.devstack import free_port, redis_service, secantus_service, wait_mongo_ready, wait_redis_ready
from shared.stream import StreamNames
from tests.llm_stub import ANSWER, LlmStub, running_stub
from tests.processes import api_service, app_env, wait_ready, wait_until, worker_service
from tests.sse import Event, iter_events, last, names, streamed_text

LONG_ANSWER = " ".join(f"word{i}" for i in range(40))


class System:
    def __init__(self, root: Path, stub: LlmStub, **llm_env: str) -> None:
        """`llm_env`: LLM settings instead of the default (every model served by the stub, with a fallback)."""
        self.redis = redis_service(free_port(), root / "redis")
        self.mongo = secantus_service(free_port(), root / "mongo")
        self.env = app_env(f"redis://127.0.0.1:{self.redis.port}/0",
                           f"mongodb://127.0.0.1:{self.mongo.port}/?directConnection=true",
                           **(llm_env or {"LLM_MOCK": "false", "LLM_API_BASE": f"{stub.url}/v1",
                                          "LLM_API_KEY": "stub-key", "LITELLM_MODEL": "openai/primary",
                                          "LLM_FALLBACKS": "openai/backup", "LLM_NUM_RETRIES": "0",
                                          "LLM_TIMEOUT_S": "20"}))
        self.worker = worker_service(self.env, root / "logs", "worker-llm")
        self.api = api_service(self.env, root / "logs")
        self.url = f"http://127.0.0.1:{self.api.port}"

    def start(self) -> "System":
        self.redis.start()
        wait_redis_ready(self.env["REDIS_URL"])
        self.mongo.start()
        wait_mongo_ready(self.env["MONGODB_URI"])
        self.worker.start()
        self.api.start(ready_timeout_s=120)
        wait_ready(self.url)
        return self

    def stop(self) -> None:
        for service in (self.api, self.worker, self.mongo, self.redis):
            service.stop()

    def stored_query(self, query_id: str) -> dict[str, Any] | None:
        with MongoClient(self.env["MONGODB_URI"]) as mongo:
            return mongo[self.env["MONGO_DB"]]["queries"].find_one({"_id": query_id})

    def count_queries(self, user_id: str) -> int:
        with MongoClient(self.env["MONGODB_URI"]) as mongo:
            return mongo[self.env["MONGO_DB"]]["queries"].count_documents({"user_id": user_id})

    def queued_ids(self) -> list[str]:
        """The record ids in the Redis stream, once per entry (the worker deletes what it stored)."""
        client = redis.Redis.from_url(self.env["REDIS_URL"])
        try:
            entries = client.xrange(StreamNames.for_prefix(self.env["STREAM_PREFIX"]).records)
        finally:
            client.close()
        return [json.loads(fields[b"data"])["id"] for _, fields in entries]


@pytest.fixture(scope="module")
def stub() -> Iterator[LlmStub]:
    with running_stub() as running:
        yield running


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory, stub: LlmStub) -> Iterator[System]:
    running = System(tmp_path_factory.mktemp("e2e-llm"), stub).start()
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def fresh_stub(stub: LlmStub) -> None:
    stub.reset()


def stream_query(system: System, user_id: str) -> list[Event]:
    body = {"user_id": user_id, "session_id": f"{user_id}-s", "query": "Where do I read about streams?"}
    with httpx.stream("POST", f"{system.url}/query", json=body, headers={"Accept": "text/event-stream"},
                      timeout=30) as response:
        assert response.status_code == 200
        return list(iter_events(response.iter_lines()))


def test_streamed_answer_arrives_in_order_and_is_stored_once(system: System) -> None:
    events = stream_query(system, "e2e-stream")

    assert names(events) == ["start", "delta", "done"]
    done = last(events, "done")
    assert streamed_text(events) == done["response"] == ANSWER
    assert wait_until(lambda: system.stored_query(done["query_id"]) is not None, timeout_s=30)
    document = system.stored_query(done["query_id"])
    assert document is not None
    assert (document["streamed"], document["aborted"], document["response"]) == (True, False, ANSWER)
    assert document["source"] == done["source"]
    assert system.count_queries("e2e-stream") == 1


def test_client_leaving_mid_stream_logs_the_partial_answer_once(system: System, stub: LlmStub) -> None:
    stub.behave("primary", text=LONG_ANSWER, token_delay_s=0.3)
    system.worker.stop()  # so the Redis stream shows every record the API appended
    body = {"user_id": "e2e-leaver", "query": "Tell me everything", "stream": True}
    received: list[Event] = []
    with httpx.stream("POST", f"{system.url}/query", json=body, timeout=30) as response:
        for event in iter_events(response.iter_lines()):
            received.append(event)
            if len([name for name, _ in received if name == "delta"]) == 3:
                break  # leaving the block closes the connection mid-answer
    query_id = received[0][1]["query_id"]

    assert wait_until(lambda: query_id in system.queued_ids(), timeout_s=30)
    assert wait_until(lambda: stub.broken_streams == 1, timeout_s=30)  # the API also hung up on the LLM
    follow_up = httpx.post(f"{system.url}/query", json={"user_id": "e2e-after", "query": "next"}, timeout=30)
    assert wait_until(lambda: follow_up.json()["query_id"] in system.queued_ids(), timeout_s=30)
    assert system.queued_ids().count(query_id) == 1

    system.worker.start()
    assert wait_until(lambda: system.stored_query(query_id) is not None, timeout_s=30)
    document = system.stored_query(query_id)
    assert document is not None
    assert (document["aborted"], document["streamed"]) == (True, True)
    partial = document["response"]
    assert partial.startswith(streamed_text(received)) and LONG_ANSWER.startswith(partial)
    assert partial != LONG_ANSWER
    assert document["ttft_ms"] is not None and "error" not in document
    assert system.count_queries("e2e-leaver") == 1


def test_client_leaving_before_the_first_token_is_logged_as_aborted(system: System, stub: LlmStub) -> None:
    stub.behave("primary", first_token_delay_s=5.0)
    body = {"user_id": "e2e-early-leaver", "query": "Tell me everything", "stream": True}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{system.url}/query", json=body, timeout=1.0)  # leaves while the API awaits the first token

    assert wait_until(lambda: system.count_queries("e2e-early-leaver") == 1, timeout_s=30)
    with MongoClient(system.env["MONGODB_URI"]) as mongo:
        document = mongo[system.env["MONGO_DB"]]["queries"].find_one({"user_id": "e2e-early-leaver"})
    assert (document["aborted"], document["streamed"], document["response"]) == (True, True, "")
    assert "error" not in document and document["latency_ms"] < 3000  # the time the participant waited
    assert wait_until(lambda: stub.broken_streams == 1, timeout_s=30)  # the API also hung up on the LLM


def test_client_leaving_a_plain_query_before_the_answer_is_logged_as_aborted(system: System, stub: LlmStub) -> None:
    stub.behave("primary", hang_s=5.0)
    body = {"user_id": "e2e-plain-leaver", "query": "Tell me everything"}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{system.url}/query", json=body, timeout=1.0)  # leaves while the API awaits the answer

    assert wait_until(lambda: system.count_queries("e2e-plain-leaver") == 1, timeout_s=30)
    with MongoClient(system.env["MONGODB_URI"]) as mongo:
        document = mongo[system.env["MONGO_DB"]]["queries"].find_one({"user_id": "e2e-plain-leaver"})
    assert (document["aborted"], document["streamed"], document["response"]) == (True, False, "")
    assert "error" not in document and document["latency_ms"] < 3000  # not a provider timeout


def test_fallback_answers_for_a_failing_primary(system: System, stub: LlmStub) -> None:
    stub.behave("primary", status=500)

    plain = httpx.post(f"{system.url}/query", json={"user_id": "e2e-fallback", "query": "hi"}, timeout=30)
    events = stream_query(system, "e2e-fallback")

    assert plain.status_code == 200
    assert plain.json()["model_used"] == last(events, "done")["model_used"] == "openai/backup"
    assert (stub.calls("primary"), stub.calls("backup")) == (2, 2)
    query_ids = [plain.json()["query_id"], last(events, "done")["query_id"]]
    assert wait_until(lambda: all(system.stored_query(q) for q in query_ids), timeout_s=30)
    for query_id in query_ids:
        document = system.stored_query(query_id)
        assert document is not None
        assert (document["model_requested"], document["model_used"]) == ("openai/primary", "openai/backup")


def test_status_reports_a_real_llm(system: System) -> None:
    status = httpx.get(f"{system.url}/status", timeout=10).json()

    assert (status["llm_mock"], status["model"]) == (False, "openai/primary")


# --- LLM_MODEL_LIST: deployments at different base URLs, and a paced mock stream -----------------------------

CANNED = " ".join(f"canned{i}" for i in range(40))  # 40 words: many 3-character mock chunks


@pytest.fixture(scope="module")
def listed_system(tmp_path_factory: pytest.TempPathFactory, stub: LlmStub) -> Iterator[System]:
    """primary at a port nothing listens on, backup on the stub, canned answering with its own mock_response."""
    root = tmp_path_factory.mktemp("e2e-llm-list")
    model_list = root / "models.yaml"
    model_list.write_text(yaml.safe_dump({"model_list": [
        {"model_name": "primary", "litellm_params": {"model": "openai/primary", "api_key": "unused",
                                                     "api_base": f"http://127.0.0.1:{free_port()}/v1"}},
        {"model_name": "backup", "litellm_params": {"model": "openai/backup", "api_base": f"{stub.url}/v1",
                                                    "api_key": "os.environ/E2E_BACKUP_KEY"}},
        {"model_name": "canned", "litellm_params": {"model": "openai/canned", "mock_response": CANNED}},
    ]}), encoding="utf-8")
    running = System(root, stub, LLM_MOCK="false", LLM_MODEL_LIST=str(model_list), E2E_BACKUP_KEY="backup-key",
                     LITELLM_MODEL="primary", LLM_FALLBACKS="backup,canned", LLM_NUM_RETRIES="0",
                     LLM_TIMEOUT_S="60", LLM_MOCK_CHUNK_DELAY_MS="200").start()
    yield running
    running.stop()


def test_model_list_fallback_at_another_base_url(listed_system: System, stub: LlmStub) -> None:
    plain = httpx.post(f"{listed_system.url}/query", json={"user_id": "e2e-list", "query": "hi"}, timeout=30)
    events = stream_query(listed_system, "e2e-list")

    assert plain.status_code == 200
    assert plain.json()["model_used"] == last(events, "done")["model_used"] == "openai/backup"
    assert plain.json()["response"] == streamed_text(events) == ANSWER
    assert stub.authorizations == ["Bearer backup-key"] * 2
    query_id = last(events, "done")["query_id"]
    assert wait_until(lambda: listed_system.stored_query(query_id) is not None, timeout_s=30)
    document = listed_system.stored_query(query_id)
    assert document is not None
    assert (document["model_requested"], document["model_used"]) == ("primary", "openai/backup")


def test_leaving_a_paced_mock_stream_logs_the_partial_answer(listed_system: System, stub: LlmStub) -> None:
    stub.behave("backup", status=500)  # so the chain ends at the mock deployment
    body = {"user_id": "e2e-mock-leaver", "query": "Tell me everything", "stream": True}
    received: list[Event] = []
    with httpx.stream("POST", f"{listed_system.url}/query", json=body, timeout=30) as response:
        for event in iter_events(response.iter_lines()):
            received.append(event)
            if len([name for name, _ in received if name == "delta"]) == 3:
                break  # leaving the block closes the connection mid-answer
    start = received[0][1]
    assert start["model_used"] == "mock:openai/canned"

    assert wait_until(lambda: listed_system.stored_query(start["query_id"]) is not None, timeout_s=30)
    document = listed_system.stored_query(start["query_id"])
    assert document is not None
    assert (document["aborted"], document["streamed"], document["model_used"]) == (True, True, "mock:openai/canned")
    partial = document["response"]
    assert partial.startswith(streamed_text(received)) and CANNED.startswith(partial) and partial != CANNED
    assert listed_system.count_queries("e2e-mock-leaver") == 1
