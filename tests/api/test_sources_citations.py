"""Citations of web-search models, through LiteLLM's real HTTP path against tests/search_stub.py."""

from collections.abc import Iterator
from types import SimpleNamespace

import litellm
import pytest

from api.sources import citations_from_response, citations_from_stream
from tests.search_stub import CITED, RESULTS, SearchStub, search_stub

MESSAGES = [{"role": "user", "content": "How do Redis streams work?"}]
MODELS = {  # model -> stub route, one per shape LiteLLM returns citations in
    "openai": ("openai/gpt-4o-search-preview", "/openai/v1"),
    "perplexity": ("perplexity/sonar", "/perplexity"),
    "anthropic": ("anthropic/claude-sonnet-4-5", "/anthropic"),
}


@pytest.fixture(scope="module")
def stub() -> Iterator[SearchStub]:
    with search_stub() as running:
        yield running


async def answer(stub: SearchStub, shape: str, stream: bool = False) -> tuple[object, list]:
    model, route = MODELS[shape]
    response = await litellm.acompletion(model=model, api_base=stub.base_url + route, api_key="stub-key",
                                         messages=MESSAGES, stream=stream)
    if not stream:
        return response, []
    chunks = [chunk async for chunk in response]
    return litellm.stream_chunk_builder(chunks), chunks


def pairs(sources: list) -> list[tuple[int, str, str]]:
    return [(s.rank, s.title, s.url) for s in sources]


CITED_PAIRS = [(1, CITED[0]["title"], CITED[0]["url"]), (2, CITED[1]["title"], CITED[1]["url"])]


async def test_openai_url_citation_annotations_each_url_once(stub: SearchStub) -> None:
    response, _ = await answer(stub, "openai")

    sources = citations_from_response(response)

    assert pairs(sources) == CITED_PAIRS
    assert [s.content for s in sources] == ["", ""]  # OpenAI's annotations carry no snippet


async def test_anthropic_citations_with_their_cited_text(stub: SearchStub) -> None:
    response, _ = await answer(stub, "anthropic")

    sources = citations_from_response(response)

    assert pairs(sources) == CITED_PAIRS
    assert [s.content for s in sources] == [CITED[0]["content"], CITED[1]["content"]]


async def test_perplexity_top_level_citations_with_search_result_details(stub: SearchStub) -> None:
    response, _ = await answer(stub, "perplexity")

    sources = citations_from_response(response)

    # The third URL has no search result: its URL stands in for its title.
    assert pairs(sources) == [*CITED_PAIRS, (3, RESULTS[4]["url"], RESULTS[4]["url"])]
    assert [s.content for s in sources] == [CITED[0]["content"], CITED[1]["content"], ""]


@pytest.mark.parametrize("shape", ["openai", "anthropic", "perplexity"])
async def test_a_streamed_answer_gives_the_same_citations(stub: SearchStub, shape: str) -> None:
    whole, _ = await answer(stub, shape)
    built, chunks = await answer(stub, shape, stream=True)

    assert citations_from_stream(built, chunks) == citations_from_response(whole)


async def test_stream_chunk_builder_loses_perplexitys_top_level_citations(stub: SearchStub) -> None:
    # Why citations_from_stream exists; if LiteLLM starts keeping them, this test says so.
    built, _ = await answer(stub, "perplexity", stream=True)

    assert citations_from_response(built) == []


async def test_capped_at_the_limit(stub: SearchStub) -> None:
    response, _ = await answer(stub, "perplexity")

    assert pairs(citations_from_response(response, limit=1)) == CITED_PAIRS[:1]


async def test_a_plain_answer_has_no_citations() -> None:
    response = await litellm.acompletion(model="gpt-4o-mini", messages=MESSAGES, mock_response="No links.")

    assert citations_from_response(response) == []
    assert citations_from_response(None) == []


def test_only_web_links_are_kept() -> None:
    message = SimpleNamespace(
        annotations=[
            {"type": "url_citation", "url_citation": {"url": "javascript:alert(1)", "title": "x"}},
            {"type": "file_citation", "file_citation": {"file_id": "f"}},
            {"type": "url_citation", "url_citation": {"url": "HTTPS://ok.example/", "title": ""}},
        ],
        provider_specific_fields={"citations": [[{"type": "char_location", "cited_text": "no url"}], "https://b.example/"]},
    )
    response = SimpleNamespace(choices=[SimpleNamespace(message=message)], citations="not a list")

    assert pairs(citations_from_response(response)) == [
        (1, "HTTPS://ok.example/", "HTTPS://ok.example/"), (2, "https://b.example/", "https://b.example/")
    ]
