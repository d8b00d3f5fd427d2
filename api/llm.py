"""The one place that talks to LiteLLM. Only the API imports it.

Every call goes through one `litellm.Router`: it retries a failing model (LLM_NUM_RETRIES), then tries
LLM_FALLBACKS in order. LLM_TIMEOUT_S bounds each HTTP attempt and, here, the whole call with its
retries and fallbacks, so a participant never waits longer and the record is queued in time for
the export's settle margin (`Settings.export_settle_s`).

The Router's deployments are one per model (with LLM_API_BASE, LLM_API_KEY), or those of the LLM_MODEL_LIST file
(`api/model_list.py`), where each model_name may have its own base URL and key, several deployments, or a
`mock_response`.
"""

import asyncio
import logging
import os
import time
from collections.abc import Iterable

# Importing LiteLLM would otherwise fetch its model price map from the internet.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
import litellm  # noqa: E402
from litellm.router import Deployment  # noqa: E402

from api.conditions import Condition  # noqa: E402
from api.llm_answer import LlmAnswer, LlmFailure, cost_usd, ms_since  # noqa: E402
from api.llm_stream import AnswerStream  # noqa: E402
from api.model_list import ModelListError, check_models_listed, load_model_list  # noqa: E402
from api.sources import citations_from_response  # noqa: E402
from shared.settings import Settings  # noqa: E402

__all__ = ["LlmAnswer", "LlmClient", "LlmFailure", "is_mock_mode"]

litellm.suppress_debug_info = True  # no "Give Feedback / Provider List" banners on stdout
logger = logging.getLogger(__name__)

MOCK_TEXT = (
    "This is a mock answer (no LLM provider key is configured). For the real thing, see "
    "[LiteLLM providers](https://docs.litellm.ai/docs/providers) - the list of models you can use.\n"
    "[FastAPI](https://fastapi.tiangolo.com/) - the framework serving this API."
)


def is_mock_mode(settings: Settings) -> bool:
    """Mock when asked to, or when neither a provider key, an API base nor a model list is configured."""
    if settings.LLM_MOCK is not None:
        return settings.LLM_MOCK
    if settings.LLM_API_BASE or settings.LLM_MODEL_LIST:
        return False
    return not litellm.validate_environment(model=settings.LITELLM_MODEL)["keys_in_environment"]


def fallback_models(settings: Settings) -> list[str]:
    return [m.strip() for m in settings.LLM_FALLBACKS.split(",") if m.strip()]


class LlmClient:
    """Built once in the lifespan. `models`: every model a Condition may ask for (the experiment arms')."""

    def __init__(self, settings: Settings, models: Iterable[str] = ()) -> None:
        self.model = settings.LITELLM_MODEL
        self.is_mock = is_mock_mode(settings)
        self.timeout_s = settings.LLM_TIMEOUT_S
        self._api_base = settings.LLM_API_BASE or None
        self._api_key = settings.LLM_API_KEY or None
        self._fallbacks = fallback_models(settings)
        self._citations_max = settings.SOURCES_MAX
        self._mock_chunk_delay_s = settings.LLM_MOCK_CHUNK_DELAY_MS / 1000
        self._model_list_file = settings.LLM_MODEL_LIST
        model_list = load_model_list(settings)
        if model_list is None:
            self._known = dict.fromkeys([self.model, *models, *self._fallbacks])
            model_list = [self._deployment(m) for m in self._known]
        else:
            self._known = dict.fromkeys(d["model_name"] for d in model_list)
            check_models_listed(self._model_list_file, set(self._known), _named_models(settings, models))
            if self._api_base or self._api_key:
                logger.warning("LLM_API_BASE and LLM_API_KEY are ignored: LLM_MODEL_LIST is set")
        self._router = self._build_router(model_list, settings)

    def _build_router(self, model_list: list[dict], settings: Settings) -> litellm.Router:
        try:
            return litellm.Router(
                model_list=model_list,
                num_retries=settings.LLM_NUM_RETRIES,
                timeout=self.timeout_s,
                # Applies to every primary, arm models included; a fallback is not itself fallen back from.
                default_fallbacks=self._fallbacks or None,
            )
        except Exception as exc:  # LiteLLM's own checks of a deployment (pydantic, unknown provider, ...)
            if not self._model_list_file:
                raise
            raise ModelListError(f"LLM_MODEL_LIST {self._model_list_file}: LiteLLM refused a deployment: "
                                 f"{' '.join(str(exc).split())[:500]}") from None

    @property
    def model_used(self) -> str:
        return self.label(self.model)

    def label(self, model: str, mock: bool = False) -> str:
        """What `model_used` says: mock answers (mock mode, or a deployment's mock_response) are marked as such."""
        return f"mock:{model}" if self.is_mock or mock else model

    async def answer(self, messages: list[dict], condition: Condition) -> LlmAnswer:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout_s):
                response = await self._router.acompletion(**self._request(messages, condition))
        except Exception as exc:  # LiteLLM maps provider errors onto many exception types
            raise self._failure(exc, condition, started) from None
        usage = getattr(response, "usage", None)
        model, mock = self._answered_by(response, condition)
        _log_fallback(response, condition)
        return LlmAnswer(
            text=response.choices[0].message.content or "",
            finish_reason=response.choices[0].finish_reason,
            citations=tuple(citations_from_response(response, self._citations_max)),
            model_used=self.label(model, mock),
            latency_ms=ms_since(started),
            prompt_tokens=getattr(usage, "prompt_tokens", None),
            completion_tokens=getattr(usage, "completion_tokens", None),
            cost_usd=0.0 if self.is_mock or mock else cost_usd(response, model),
        )

    async def open_stream(self, messages: list[dict], condition: Condition) -> AnswerStream:
        """Starts a streamed answer and waits for its first token, so a failure before it is still a plain
        JSON error (429/502/504). Later failures surface from `AnswerStream.deltas()` as LlmFailure."""
        started = time.perf_counter()
        deadline = asyncio.get_running_loop().time() + self.timeout_s
        request = {**self._request(messages, condition), "stream": True, "stream_options": {"include_usage": True}}
        try:
            async with asyncio.timeout_at(deadline):
                chunks = await self._router.acompletion(**request)
        except Exception as exc:
            raise self._failure(exc, condition, started) from None
        model, mock_deployment = self._answered_by(chunks, condition)
        _log_fallback(chunks, condition)
        model_used = self.label(model, mock_deployment)
        is_mock_answer = self.is_mock or mock_deployment
        stream = AnswerStream(chunks, messages, model, model_used, started, deadline, is_mock_answer,
                              lambda exc: self._failure(exc, condition, started, model_used),
                              citations_max=self._citations_max,
                              # LiteLLM sends a mock answer's chunks all at once; pace them so a demo can see
                              # (and leave) a stream. Never for a real provider.
                              chunk_delay_s=self._mock_chunk_delay_s if is_mock_answer else 0.0)
        try:
            await stream.wait_first_token()
        except BaseException:  # a failure, or the client left (cancelled): stop the provider's answer
            await stream.aclose()
            raise
        return stream

    def _request(self, messages: list[dict], condition: Condition) -> dict:
        self._ensure_known(condition.model)
        request: dict = {"model": condition.model, "messages": messages}
        if condition.temperature is not None:
            request["temperature"] = condition.temperature
        if self.is_mock:
            request["mock_response"] = MOCK_TEXT
        return request

    def _deployment(self, model: str) -> dict:
        params = {"model": model, "api_base": self._api_base, "api_key": self._api_key}
        return {"model_name": model, "litellm_params": {k: v for k, v in params.items() if v is not None}}

    def _ensure_known(self, model: str) -> None:
        # An arm model nobody passed in at construction: served all the same, with the same fallbacks.
        # (With LLM_MODEL_LIST every model was checked at startup; one not in the file fails in the Router.)
        if model not in self._known and not self._model_list_file:
            logger.warning("model added to the router at first use", extra={"model": model})
            self._router.add_deployment(Deployment(**self._deployment(model)))
            self._known[model] = None

    def _answered_by(self, response: object, condition: Condition) -> tuple[str, bool]:
        """The model of the deployment that answered, as LiteLLM reports it (a fallback when the primary
        failed), and whether that deployment answers with its own mock_response."""
        hidden = getattr(response, "_hidden_params", None) or {}
        model = hidden.get("litellm_model_name") or condition.model
        model_id = hidden.get("model_id")
        if not (self._model_list_file and model_id):  # only a model list's deployments carry a mock_response
            return model, False
        deployment = self._router.registry().deployment(str(model_id))
        return model, deployment is not None and getattr(deployment.litellm_params, "mock_response", None) is not None

    def _failure(self, exc: BaseException, condition: Condition, started: float,
                 model_used: str | None = None) -> LlmFailure:
        status, message, headers = self._classify(exc)
        logger.warning("llm call failed", extra={"model": condition.model, "status": status,
                                                 "error": repr(exc)[:300]})
        return LlmFailure(status, message, model_used=model_used or self.label(condition.model),
                          latency_ms=ms_since(started), headers=headers)

    def _classify(self, exc: BaseException) -> tuple[int, str, dict[str, str] | None]:
        """429 for a provider's rate limit, 504 for a timeout, 502 for any other upstream failure."""
        if isinstance(exc, TimeoutError | litellm.Timeout):
            return 504, f"the LLM did not answer within {self.timeout_s:g} s", None
        if isinstance(exc, litellm.RateLimitError):
            retry_after = _retry_after_s(exc)
            headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
            return 429, "the LLM provider is rate limiting requests; retry later", headers
        return 502, f"the LLM provider failed: {type(exc).__name__}", None


def _log_fallback(response: object, condition: Condition) -> None:
    """LiteLLM's Router logs failed attempts at INFO, which `configure_logging` silences: say here that
    the requested model failed and another answered (from the headers LiteLLM's Router attaches)."""
    headers = (getattr(response, "_hidden_params", None) or {}).get("additional_headers") or {}
    fallbacks = headers.get("x-litellm-attempted-fallbacks") or 0
    if fallbacks:
        logger.warning("llm fallback answered", extra={
            "model": condition.model, "answered_by": headers.get("x-litellm-model-group"),
            "attempted_fallbacks": fallbacks, "attempted_retries": headers.get("x-litellm-attempted-retries")})


def _named_models(settings: Settings, arm_models: Iterable[str]) -> dict[str, str]:
    """Every model the settings and the arms name -> which of them names it, for a clear startup error."""
    named = {model: "an experiment arm" for model in arm_models}
    named.update({model: "LLM_FALLBACKS" for model in fallback_models(settings)})
    named[settings.LITELLM_MODEL] = "LITELLM_MODEL"
    return named


def _retry_after_s(exc: BaseException) -> int | None:
    """The provider's Retry-After in whole seconds, when it sent one."""
    headers = getattr(exc, "litellm_response_headers", None) or getattr(getattr(exc, "response", None), "headers", None)
    value = str((headers or {}).get("retry-after", "")).strip()
    return int(value) if value.isdigit() else None
