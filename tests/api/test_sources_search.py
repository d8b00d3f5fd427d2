"""The search providers through `litellm.asearch`'s real HTTP path, against tests/search_stub.py."""

from collections.abc import Iterator
from dataclasses import replace

import pytest

from api.conditions import Condition
from api.sources import SourceFinder, SourcesConfigError, SourcesFailure
from shared.settings import Settings
from tests.search_stub import RESULTS, SearchStub, search_stub

CONDITION = Condition(model="m", system_prompt="p", temperature=None, sources_provider="tavily", source_set=None,
                      history_turns=0)
QUESTION = "How do Redis streams work?"


@pytest.fixture(scope="module")
def stub() -> Iterator[SearchStub]:
    with search_stub() as running:
        yield running


@pytest.fixture
def provider_at(stub: SearchStub, monkeypatch: pytest.MonkeyPatch):
    """Points tavily and searxng at a stub mode, as an operator would with TAVILY_API_BASE / SEARXNG_API_BASE."""
    stub.requests.clear()
    monkeypatch.setenv("TAVILY_API_KEY", "stub-tavily-key")

    def point(mode: str) -> SearchStub:
        monkeypatch.setenv("TAVILY_API_BASE", f"{stub.base_url}/{mode}")
        monkeypatch.setenv("SEARXNG_API_BASE", f"{stub.base_url}/{mode}")
        return stub

    return point


def finder(**overrides: object) -> SourceFinder:
    return SourceFinder(Settings(_env_file=None, **{"SOURCES_PROVIDER": "tavily", **overrides}))


def ranked(results: list[dict]) -> list[dict]:
    return [{**r, "rank": rank} for rank, r in enumerate(results, start=1)]


async def test_tavily_results_become_ranked_sources(provider_at) -> None:
    stub = provider_at("ok")

    sources = await finder(SOURCES_MAX=2).find(CONDITION, QUESTION)

    assert [s.model_dump() for s in sources] == ranked(RESULTS[:2])
    [request] = stub.requests
    assert (request.method, request.path) == ("POST", "/ok/search")
    assert request.body == {"query": QUESTION, "max_results": 2}
    assert request.headers["authorization"] == "Bearer stub-tavily-key"


async def test_repeated_urls_and_non_web_links_are_dropped_before_ranking(provider_at) -> None:
    provider_at("ok")

    sources = await finder(SOURCES_MAX=20).find(CONDITION, QUESTION)

    assert [s.model_dump() for s in sources] == ranked([RESULTS[0], RESULTS[1], RESULTS[4], RESULTS[5]])


async def test_each_condition_picks_its_provider_searxng_capped_at_sources_max(provider_at) -> None:
    stub = provider_at("ok")

    sources = await finder(SOURCES_PROVIDER="none", SOURCES_MAX=3).find(
        replace(CONDITION, sources_provider="searxng"), QUESTION
    )

    # SearXNG ignores max_results and returns a page; the finder keeps SOURCES_MAX of them.
    assert [s.model_dump() for s in sources] == ranked([RESULTS[0], RESULTS[1], RESULTS[4]])
    [request] = stub.requests
    assert (request.method, request.path, request.query) == ("GET", "/ok/search", {"q": [QUESTION], "format": ["json"]})


async def test_provider_none_fetches_nothing(provider_at) -> None:
    stub = provider_at("ok")

    assert await finder(SOURCES_PROVIDER="none").find(replace(CONDITION, sources_provider="none"), QUESTION) == []
    assert stub.requests == []


@pytest.mark.parametrize(
    ("mode", "status", "message"),
    [
        ("fail", 502, "search provider 'tavily' failed (InternalServerError, upstream status 500)"),
        ("garbage", 502, "search provider 'tavily' failed (APIConnectionError)"),
        ("ratelimit", 429, "search provider 'tavily' is rate limiting requests; retry later"),
    ],
)
async def test_a_failing_provider_is_a_clear_sources_failure(provider_at, mode: str, status: int, message: str) -> None:
    provider_at(mode)

    with pytest.raises(SourcesFailure) as failure:
        await finder().find(CONDITION, QUESTION)

    assert (failure.value.status, failure.value.message) == (status, message)


@pytest.mark.parametrize("provider", ["tavily", "searxng"])
async def test_a_slow_provider_is_a_504_after_search_timeout_s(provider_at, provider: str) -> None:
    provider_at("slow")

    with pytest.raises(SourcesFailure) as failure:
        await finder(SEARCH_TIMEOUT_S=0.3).find(replace(CONDITION, sources_provider=provider), QUESTION)

    assert (failure.value.status, failure.value.message) == (
        504, f"search provider '{provider}' did not answer within 0.3 s"
    )


async def test_a_missing_key_is_a_502_and_the_log_says_which(provider_at, monkeypatch, caplog) -> None:
    stub = provider_at("ok")
    monkeypatch.delenv("TAVILY_API_KEY")

    with pytest.raises(SourcesFailure) as failure:
        await finder().find(CONDITION, QUESTION)

    assert failure.value.status == 502
    assert stub.requests == []
    [record] = [r for r in caplog.records if r.getMessage() == "search failed"]
    assert "TAVILY_API_KEY is not set" in record.detail


def test_an_unknown_provider_stops_startup_listing_litellms_providers() -> None:
    with pytest.raises(SourcesConfigError) as failure:
        finder(SOURCES_PROVIDER="tavilly")

    assert str(failure.value).startswith(
        "SOURCES_PROVIDER: sources provider 'tavilly' is unknown; use 'none', 'static' or a LiteLLM search provider: "
    )
    for name in ("tavily", "exa_ai", "perplexity", "brave", "searxng"):
        assert name in str(failure.value)


def test_an_unknown_provider_in_an_arm_stops_startup() -> None:
    arm = replace(CONDITION, sources_provider="google", experiment="exp1", arm="b")

    with pytest.raises(SourcesConfigError, match="^arm 'b' of experiment 'exp1': sources provider 'google' is unknown"):
        finder().check_conditions([CONDITION, arm])
