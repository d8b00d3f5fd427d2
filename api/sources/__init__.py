"""Where a query's sources come from (`SOURCES_PROVIDER`), and how they are shown to the model."""

from api.sources.citations import citations_from_response
from api.sources.finder import SourceFinder, SourcesFailure
from api.sources.links import extract_sources

__all__ = ["SourceFinder", "SourcesFailure", "citations_from_response", "extract_sources"]
