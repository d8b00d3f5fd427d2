"""Search providers through `litellm.asearch`: tavily, exa_ai, perplexity, brave, searxng and the rest.

Each provider reads its key (`TAVILY_API_KEY`, ...) and, to reach a self-hosted or stub server, its base
URL (`TAVILY_API_BASE`, `SEARXNG_API_BASE`, ...) from the environment; nothing here holds a key.
"""

import asyncio
import logging
import time

import litellm
from litellm.types.utils import SearchProvidersSet

from api.errors import ApiError
from shared.records import Source

logger = logging.getLogger(__name__)

SEARCH_PROVIDERS: frozenset[str] = frozenset(SearchProvidersSet)


class SourcesFailure(ApiError):
    """The search provider failed or timed out; the query fails rather than run without its stimuli."""


async def search_sources(provider: str, question: str, max_results: int, timeout_s: float) -> list[Source]:
    """The provider's results as sources, each URL once, ranks 1..n, at most `max_results`."""
    started = time.perf_counter()
    try:
        # LiteLLM's own timeout does not cover every provider (SearXNG's GET has none); this bound does.
        async with asyncio.timeout(timeout_s):
            response = await litellm.asearch(
                query=question, search_provider=provider, max_results=max_results, timeout=timeout_s
            )
    except (TimeoutError, litellm.Timeout) as exc:
        _log_failure(provider, started, exc)
        raise SourcesFailure(504, f"search provider '{provider}' did not answer within {timeout_s:g} s") from None
    except litellm.RateLimitError as exc:
        _log_failure(provider, started, exc)
        raise SourcesFailure(429, f"search provider '{provider}' is rate limiting requests; retry later") from None
    except Exception as exc:  # any provider error: bad key, HTTP 5xx, unreadable answer
        _log_failure(provider, started, exc)
        raise SourcesFailure(502, f"search provider '{provider}' failed ({_reason(exc)})") from None
    sources = _ranked(response.results, max_results)
    logger.info("sources searched", extra={"provider": provider, "count": len(sources), "ms": _ms_since(started)})
    return sources


def _ranked(results: list, max_results: int) -> list[Source]:
    # Some providers ignore max_results (SearXNG returns a page) or repeat a URL; only http(s) links are shown.
    unique: dict[str, Source] = {}
    for result in results:
        if len(unique) >= max_results:
            break
        if result.url.lower().startswith(("https://", "http://")):
            unique.setdefault(result.url, Source(title=result.title or result.url, url=result.url, content=result.snippet))
    return [s.model_copy(update={"rank": rank}) for rank, s in enumerate(unique.values(), start=1)]


def _reason(exc: Exception) -> str:
    # The status and class say what went wrong without echoing the provider's body (it may hold the query).
    # LiteLLM gives a connection error (no key, unreadable answer) a made-up 500: that one is not shown.
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and not isinstance(exc, litellm.APIConnectionError):
        return f"{type(exc).__name__}, upstream status {status}"
    return type(exc).__name__


def _log_failure(provider: str, started: float, exc: BaseException) -> None:
    # Operators get LiteLLM's message (e.g. "TAVILY_API_KEY is not set"); the client only its gist.
    detail = (str(exc).strip().splitlines() or [""])[0][:300]
    logger.warning(
        "search failed",
        extra={"provider": provider, "ms": _ms_since(started), "error": type(exc).__name__,
               "status": getattr(exc, "status_code", None), "detail": detail},
    )


def _ms_since(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
