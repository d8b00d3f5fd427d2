"""The one place that talks to LiteLLM. Only the API imports it."""

import asyncio
import logging
import os
import time
from dataclasses import dataclass

# Importing LiteLLM would otherwise fetch its model price map from the internet.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
import litellm  # noqa: E402

from api.conditions import Condition  # noqa: E402
from api.errors import ApiError  # noqa: E402
from api.sources import citations_from_response  # noqa: E402
from shared.records import Source  # noqa: E402
from shared.settings import Settings  # noqa: E402

logger = logging.getLogger(__name__)

MOCK_TEXT = (
    "This is a mock answer (no LLM provider key is configured). For the real thing, see "
    "[LiteLLM providers](https://docs.litellm.ai/docs/providers) - the list of models you can use.\n"
    "[FastAPI](https://fastapi.tiangolo.com/) - the framework serving this API."
)


@dataclass(frozen=True)
class LlmAnswer:
    text: str
    model_used: str
    latency_ms: float
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None
    finish_reason: str | None = None
    ttft_ms: float | None = None
    citations: tuple[Source, ...] = ()  # a web-search model's own citations


class LlmFailure(ApiError):
    """An LLM call that failed; carries what to log with the failed query."""

    def __init__(self, status: int, message: str, model_used: str, latency_ms: float) -> None:
        super().__init__(status, message)
        self.model_used = model_used
        self.latency_ms = latency_ms


def is_mock_mode(settings: Settings) -> bool:
    """Mock when asked to, or when neither a provider key nor an API base is configured."""
    if settings.LLM_MOCK is not None:
        return settings.LLM_MOCK
    if settings.LLM_API_BASE:
        return False
    return not litellm.validate_environment(model=settings.LITELLM_MODEL)["keys_in_environment"]


class LlmClient:
    def __init__(self, settings: Settings) -> None:
        self.model = settings.LITELLM_MODEL
        self.is_mock = is_mock_mode(settings)
        self._timeout_s = settings.LLM_TIMEOUT_S
        self._api_base = settings.LLM_API_BASE or None
        self._api_key = settings.LLM_API_KEY or None

    @property
    def model_used(self) -> str:
        return f"mock:{self.model}" if self.is_mock else self.model

    async def answer(self, messages: list[dict], condition: Condition) -> LlmAnswer:
        started = time.perf_counter()
        try:
            # LiteLLM's own timeout covers the HTTP call; the outer one also bounds retries and hooks.
            async with asyncio.timeout(self._timeout_s + 1):
                response = await litellm.acompletion(**self._request(messages, condition))
        except (TimeoutError, litellm.Timeout):
            raise self._failure(504, f"the LLM did not answer within {self._timeout_s:g} s", started) from None
        except Exception as exc:  # LiteLLM maps provider errors onto many exception types
            logger.warning("llm call failed", extra={"model": self.model, "error": repr(exc)[:300]})
            raise self._failure(502, f"the LLM provider failed: {type(exc).__name__}", started) from None
        usage = getattr(response, "usage", None)
        return LlmAnswer(
            text=response.choices[0].message.content or "",
            finish_reason=response.choices[0].finish_reason,
            citations=tuple(citations_from_response(response)),
            model_used=self.model_used,
            latency_ms=_ms_since(started),
            prompt_tokens=getattr(usage, "prompt_tokens", None),
            completion_tokens=getattr(usage, "completion_tokens", None),
            cost_usd=0.0 if self.is_mock else _cost_usd(response),
        )

    def _request(self, messages: list[dict], condition: Condition) -> dict:
        request = {"model": condition.model, "messages": messages, "timeout": self._timeout_s, "num_retries": 0}
        if condition.temperature is not None:
            request["temperature"] = condition.temperature
        if self._api_base:
            request["api_base"] = self._api_base
        if self._api_key:
            request["api_key"] = self._api_key
        if self.is_mock:
            request["mock_response"] = MOCK_TEXT
        return request

    def _failure(self, status: int, message: str, started: float) -> LlmFailure:
        return LlmFailure(status, message, model_used=self.model_used, latency_ms=_ms_since(started))


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def _cost_usd(response: object) -> float | None:
    try:
        return float(litellm.completion_cost(completion_response=response))
    except Exception:  # unknown model pricing is normal for local and custom models
        return None
