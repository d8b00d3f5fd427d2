"""Normalises the citations of web-search models into `source` entries."""

from typing import Any

from shared.records import Source


def citations_from_response(response: Any) -> list[Source]:
    """`message.annotations` (url_citation: OpenAI, Perplexity, Gemini) or
    `provider_specific_fields["citations"]` (Anthropic) of a LiteLLM ModelResponse, ranked 1..n."""
    # SKELETON: filled in with the providers' real shapes.
    return []
