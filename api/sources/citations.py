"""Normalises the citations of web-search models into `source` entries.

LiteLLM hands them over in three shapes (checked against litellm 1.110 with tests/search_stub.py):
- `message.annotations`: `{"type": "url_citation", "url_citation": {"url", "title", ...}}` (OpenAI, Gemini,
  and Perplexity when LiteLLM maps its `[n]` markers), one per citation mark, so URLs repeat;
- `message.provider_specific_fields["citations"]`: Anthropic's, one list per text block, of
  `{"type": "web_search_result_location", "url", "title", "cited_text"}` (a `search_result_location`
  names its URL `source`); a streamed answer rebuilt by `litellm.stream_chunk_builder` has them too;
- the response's top-level `citations` (Perplexity: a list of URLs) with `search_results` giving their titles
  and snippets. `stream_chunk_builder` drops these two: use `citations_from_stream` on a streamed answer.
"""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from shared.records import Source
from shared.settings import Settings

DEFAULT_LIMIT: int = Settings.model_fields["SOURCES_MAX"].default


def citations_from_response(response: Any, limit: int = DEFAULT_LIMIT) -> list[Source]:
    """The citations of a LiteLLM ModelResponse, each URL once in order of first mention, ranked 1..limit.

    Pass `limit=settings.SOURCES_MAX`. Only http(s) URLs are kept: the front end renders them as links.
    """
    return _ranked(_cited(response, _top_level(response)), limit)


def citations_from_stream(response: Any, chunks: Sequence[Any], limit: int = DEFAULT_LIMIT) -> list[Source]:
    """Like `citations_from_response`, for `response = litellm.stream_chunk_builder(chunks)`.

    The rebuilt response keeps annotations and Anthropic's citations but loses Perplexity's top-level
    `citations` and `search_results`, which every chunk carries; they are read from the last chunk.
    """
    top_level = next((_top_level(c) for c in reversed(chunks) if getattr(c, "citations", None)), ([], []))
    return _ranked(_cited(response, top_level), limit)


def _cited(response: Any, top_level: tuple[list, list]) -> Iterable[Source]:
    message = _message(response)
    urls, search_results = top_level
    details = {r["url"]: r for r in search_results if isinstance(r, Mapping) and isinstance(r.get("url"), str)}
    yield from _from_annotations(getattr(message, "annotations", None) or [], details)
    fields = getattr(message, "provider_specific_fields", None) or {}
    yield from _from_anthropic(fields.get("citations") or [] if isinstance(fields, Mapping) else [])
    yield from _from_urls(urls, details)


def _message(response: Any) -> Any:
    choices = getattr(response, "choices", None) or []
    return getattr(choices[0], "message", None) if choices else None


def _top_level(response: Any) -> tuple[list, list]:
    urls, results = getattr(response, "citations", None), getattr(response, "search_results", None)
    return (urls if isinstance(urls, list) else []), (results if isinstance(results, list) else [])


def _from_annotations(annotations: Iterable[Any], details: Mapping[str, Mapping]) -> Iterable[Source]:
    for annotation in annotations:
        if not isinstance(annotation, Mapping) or annotation.get("type") != "url_citation":
            continue
        citation = annotation.get("url_citation") or {}
        url = citation.get("url")
        detail = details.get(url, {}) if isinstance(url, str) else {}
        title, content = citation.get("title") or detail.get("title"), citation.get("content") or detail.get("snippet")
        yield from _source(url, title, content)


def _from_anthropic(citations: Iterable[Any]) -> Iterable[Source]:
    for citation in _flattened(citations):
        if isinstance(citation, str):  # some providers give bare URLs
            yield from _source(citation, None, None)
        elif isinstance(citation, Mapping):
            url = citation.get("url") or citation.get("source")
            yield from _source(url, citation.get("title") or citation.get("document_title"), citation.get("cited_text"))


def _flattened(citations: Iterable[Any]) -> Iterable[Any]:
    # One list per text block, or one list for a whole streamed answer.
    for item in citations:
        if isinstance(item, list):
            yield from item
        else:
            yield item


def _from_urls(urls: Iterable[Any], details: Mapping[str, Mapping]) -> Iterable[Source]:
    for url in urls:
        detail = details.get(url, {}) if isinstance(url, str) else {}
        yield from _source(url, detail.get("title"), detail.get("snippet"))


def _source(url: Any, title: Any, content: Any) -> Iterable[Source]:
    if isinstance(url, str) and url.lower().startswith(("https://", "http://")):
        yield Source(title=str(title or url), url=url, content=str(content or ""))


def _ranked(sources: Iterable[Source], limit: int) -> list[Source]:
    """Each URL once, in order of first mention, ranks 1..n, at most `limit`."""
    unique: dict[str, Source] = {}
    for source in sources:
        if len(unique) >= limit:
            break
        unique.setdefault(source.url, source)
    return [s.model_copy(update={"rank": rank}) for rank, s in enumerate(unique.values(), start=1)]
