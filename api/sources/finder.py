"""Fetches the sources a query is answered with: none, a static curated file, or a LiteLLM search provider."""

from api.conditions import Condition
from api.errors import ApiError
from shared.records import Source
from shared.settings import Settings


class SourcesFailure(ApiError):
    """The search provider failed or timed out; the query fails rather than run without its stimuli."""


class SourceFinder:
    def __init__(self, settings: Settings) -> None:
        self._max = settings.SOURCES_MAX

    async def find(self, condition: Condition, question: str) -> list[Source]:
        """Sources in the order they will be shown, ranks 1..n. Raises SourcesFailure (502/504)."""
        # SKELETON: provider "none" only; static and litellm.asearch providers come next.
        return []

    async def aclose(self) -> None:
        return None
