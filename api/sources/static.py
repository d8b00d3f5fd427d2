"""The `static` provider: curated source sets from SOURCES_FILE, chosen by experiment arm or query pattern.

The file (validated once, at startup):
    {
      "sets": {"boots": [{"title": "...", "url": "https://...", "content": "..."}], "control": []},
      "rules": [{"pattern": "boot|hiking", "set": "boots"}],
      "default": "control"
    }
A condition's `source_set` (its experiment arm) wins; else the first rule whose pattern matches the query
(a Python regex, case-insensitive, searched anywhere in it); else `default`; else no sources.
"""

import re
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.records import Source


class SourcesConfigError(ValueError):
    """A sources setting or file is wrong; raised at startup so the API never runs without its stimuli."""


class StaticSource(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Annotated[str, Field(min_length=1, max_length=500)]
    url: Annotated[str, Field(pattern=r"^https?://\S+$", max_length=2000)]
    content: str = ""


class SetRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pattern: Annotated[str, Field(min_length=1)]
    set: str

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern, re.IGNORECASE)
        except re.error as exc:
            raise ValueError(f"pattern {pattern!r} is not a valid regular expression: {exc}") from None
        return pattern


class SourcesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sets: dict[Annotated[str, Field(min_length=1)], list[StaticSource]]
    rules: list[SetRule] = []
    default: str | None = None

    @field_validator("sets")
    @classmethod
    def _urls_once_per_set(cls, sets: dict[str, list[StaticSource]]) -> dict[str, list[StaticSource]]:
        for name, sources in sets.items():
            urls = [s.url for s in sources]
            if duplicates := sorted({u for u in urls if urls.count(u) > 1}):
                raise ValueError(f"set {name!r} lists {duplicates[0]!r} twice; each URL is shown once")
        return sets

    @model_validator(mode="after")
    def _named_sets_exist(self) -> "SourcesFile":
        for index, rule in enumerate(self.rules):
            if rule.set not in self.sets:
                raise ValueError(f"rules[{index}] names set {rule.set!r}, which is not in 'sets'")
        if self.default is not None and self.default not in self.sets:
            raise ValueError(f"default names set {self.default!r}, which is not in 'sets'")
        return self


class StaticSources:
    """The sets of one validated SOURCES_FILE, ready to answer without I/O."""

    def __init__(self, path: Path, max_sources: int) -> None:
        self.path = path
        config = _read(path)
        if too_long := [n for n, sources in config.sets.items() if len(sources) > max_sources]:
            count = len(config.sets[too_long[0]])
            raise SourcesConfigError(
                f"{path}: set {too_long[0]!r} has {count} sources, more than SOURCES_MAX={max_sources}; "
                "shorten the set or raise SOURCES_MAX, so participants see the whole set"
            )
        self._sets = {name: _ranked(sources) for name, sources in config.sets.items()}
        self._rules = [(re.compile(rule.pattern, re.IGNORECASE), rule.set) for rule in config.rules]
        self._default = config.default

    @property
    def set_names(self) -> frozenset[str]:
        return frozenset(self._sets)

    def sources_for(self, question: str, source_set: str | None) -> list[Source]:
        """The chosen set, ranks 1..n; copies, so no caller can change the curated set."""
        name = source_set or self._matching_set(question)
        return [s.model_copy() for s in self._sets[name]] if name is not None else []

    def _matching_set(self, question: str) -> str | None:
        return next((name for pattern, name in self._rules if pattern.search(question)), self._default)


def _read(path: Path) -> SourcesFile:
    try:
        return SourcesFile.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise SourcesConfigError(f"SOURCES_FILE {path} cannot be read: {exc.strerror or exc}") from None
    except ValidationError as exc:
        raise SourcesConfigError(f"SOURCES_FILE {path} is not a valid sources file: {_first_problem(exc)}") from None


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in error["loc"])
    more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
    return f"{where + ': ' if where else ''}{error['msg']}{more}"


def _ranked(sources: list[StaticSource]) -> list[Source]:
    return [Source(**s.model_dump(), rank=rank) for rank, s in enumerate(sources, start=1)]

