"""The local LLM stub, shared by the /query tests: one server per session, reset for each test."""

from collections.abc import Iterator

import litellm
import pytest

from scripts.devstack import Service
from shared.settings import Settings
from tests.conftest import make_settings
from tests.llm_stub import COMPLETION_TOKENS, PROMPT_TOKENS, LlmStub, running_stub

PRICED = "openai/gpt-4o-mini"  # in LiteLLM's local cost map, so its cost is known


@pytest.fixture(scope="session")
def stub_server() -> Iterator[LlmStub]:
    with running_stub() as stub:
        yield stub


@pytest.fixture
def stub(stub_server: LlmStub) -> LlmStub:
    stub_server.reset()
    return stub_server


def stub_settings(redis: Service, mongo: Service, stub: LlmStub, **overrides: object) -> Settings:
    """A real (not mock) LLM configuration whose every model is served by the stub; no retries unless asked."""
    values: dict[str, object] = {"LLM_MOCK": False, "LLM_API_BASE": f"{stub.url}/v1", "LLM_API_KEY": "stub-key",
                                 "LITELLM_MODEL": "openai/primary", "LLM_NUM_RETRIES": 0, **overrides}
    return make_settings(redis, mongo, **values)


def expected_cost(prompt_tokens: int = PROMPT_TOKENS, completion_tokens: int = COMPLETION_TOKENS) -> float:
    """What the cost map charges PRICED for the stub's default answer."""
    return sum(litellm.cost_per_token(model=PRICED, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens))
