"""What an LLM call gives the route: the answer with its measurements, or the failure to report."""

import os
import time
from dataclasses import dataclass

# Importing LiteLLM would otherwise fetch its model price map from the internet.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
import litellm  # noqa: E402

from api.errors import ApiError  # noqa: E402
from shared.records import Source  # noqa: E402


@dataclass(frozen=True)
class LlmAnswer:
    text: str
    model_used: str  # the deployment that answered: a fallback when the primary failed
    latency_ms: float  # request to last token
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None  # None: LiteLLM's cost map does not know the model
    finish_reason: str | None = None
    ttft_ms: float | None = None  # streamed answers only
    citations: tuple[Source, ...] = ()  # a web-search model's own citations


class LlmFailure(ApiError):
    """An LLM call that failed; carries what to log with the failed query."""

    def __init__(self, status: int, message: str, model_used: str, latency_ms: float,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status, message, headers=headers)
        self.model_used = model_used
        self.latency_ms = latency_ms


def ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def cost_usd(response: object, model: str) -> float | None:
    """From LiteLLM's cost map; None when the map has no price for `model` (local and custom models)."""
    try:
        cost = float(litellm.completion_cost(completion_response=response))
    except Exception:  # unknown model pricing is normal for local and custom models
        return None
    return cost if cost or _has_price(model) else None


def _has_price(model: str) -> bool:
    # The Router enters each of its models into the cost map at price 0, so "mapped" is not "priced".
    try:
        info = litellm.get_model_info(model=model)
    except Exception:
        return False
    return bool(info.get("input_cost_per_token") or info.get("output_cost_per_token"))
