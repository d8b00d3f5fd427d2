"""Where a query's sources come from (`SOURCES_PROVIDER`), and how they are shown to the model."""

from api.sources.citations import citations_from_response, citations_from_stream
from api.sources.finder import SourceFinder, SourcesConfigError, SourcesFailure
from api.sources.links import extract_sources

__all__ = [
    "SourceFinder",
    "SourcesConfigError",
    "SourcesFailure",
    "citations_from_response",
    "citations_from_stream",
    "extract_sources",
]
