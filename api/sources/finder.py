"""Fetches the sources a query is answered with: none, a static curated file, or a LiteLLM search provider."""

from collections.abc import Iterable
from pathlib import Path

from api.conditions import Condition
from api.errors import ApiError
from api.sources.search import SEARCH_PROVIDERS, SourcesFailure, search_sources
from api.sources.static import SourcesConfigError, StaticSources
from shared.records import Source
from shared.settings import Settings

NONE = "none"
STATIC = "static"

__all__ = ["NONE", "STATIC", "SourceFinder", "SourcesConfigError", "SourcesFailure"]


class SourceFinder:
    """Built once in the lifespan; a wrong provider name or SOURCES_FILE stops the startup with a clear error.

    The provider is chosen per call, from the condition (an experiment arm may name its own).
    """

    def __init__(self, settings: Settings) -> None:
        self._max = settings.SOURCES_MAX
        self._timeout_s = settings.SEARCH_TIMEOUT_S
        self._static = StaticSources(Path(settings.SOURCES_FILE), self._max) if settings.SOURCES_FILE else None
        self.check_providers([settings.SOURCES_PROVIDER], where="SOURCES_PROVIDER")

    async def find(self, condition: Condition, question: str) -> list[Source]:
        """Sources in the order they will be shown, ranks 1..n. Raises SourcesFailure (502/504, 429)."""
        provider = condition.sources_provider
        # Naming a set chooses curated stimuli, whatever provider the arm inherited.
        if condition.source_set is not None or provider == STATIC:
            return self._static_sources(condition, question)
        if provider == NONE:
            return []
        if provider not in SEARCH_PROVIDERS:  # unreachable once check_conditions ran at startup
            raise ApiError(500, f"sources provider '{provider}' is not configured")
        return await search_sources(provider, question, self._max, self._timeout_s)

    def check_conditions(self, conditions: Iterable[Condition]) -> None:
        """For the lifespan: every arm's provider and source set exist. Raises SourcesConfigError."""
        for condition in conditions:
            where = f"arm '{condition.arm}' of experiment '{condition.experiment}'" if condition.arm else "settings"
            self.check_providers([condition.sources_provider], where=where)
            if condition.source_set is not None:
                self.check_sets([condition.source_set], where=where)

    def check_providers(self, names: Iterable[str], where: str = "an experiment arm") -> None:
        for name in names:
            if name not in SEARCH_PROVIDERS and name not in (NONE, STATIC):
                raise SourcesConfigError(
                    f"{where}: sources provider '{name}' is unknown; use 'none', 'static' or a LiteLLM search "
                    f"provider: {', '.join(sorted(SEARCH_PROVIDERS))}"
                )
            if name == STATIC and self._static is None:
                raise SourcesConfigError(f"{where}: sources provider 'static' needs SOURCES_FILE, which is not set")

    def check_sets(self, names: Iterable[str], where: str = "an experiment arm") -> None:
        for name in names:
            if self._static is None:
                raise SourcesConfigError(f"{where}: source set '{name}' needs SOURCES_FILE, which is not set")
            if name not in self._static.set_names:
                known = ", ".join(sorted(self._static.set_names))
                raise SourcesConfigError(
                    f"{where}: source set '{name}' is not in SOURCES_FILE {self._static.path} (its sets: {known})"
                )

    def _static_sources(self, condition: Condition, question: str) -> list[Source]:
        if self._static is None or (
            condition.source_set is not None and condition.source_set not in self._static.set_names
        ):  # unreachable once check_conditions ran at startup
            raise ApiError(500, f"source set '{condition.source_set}' is not configured")
        return self._static.sources_for(question, condition.source_set)

    async def aclose(self) -> None:
        """Nothing to close: LiteLLM keeps its own HTTP clients for search."""
        return None
