"""What an export may ask for: one validated model shared by the API, the export jobs and the CLI.

Every filter is a plain string (or a datetime) used only as an equality or range value, so a
client can never smuggle a MongoDB operator in; unknown parameters are refused, not ignored.
"""

import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from shared.records import Kind

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
FilterText = Annotated[str, StringConstraints(min_length=1, max_length=256)]
MAX_EVENT_TYPES = 50


class ExportFormat(StrEnum):
    JSON = "json"
    NDJSON = "ndjson"
    CSV = "csv"


class ExportFilters(BaseModel):
    """Which records: `since` is inclusive, `until` exclusive, all filters combine with AND."""

    model_config = ConfigDict(extra="forbid")

    since: datetime | None = Field(default=None, description="ISO-8601; records at or after this time")
    until: datetime | None = Field(default=None, description="ISO-8601; records strictly before this time")
    user_id: FilterText | None = None
    session_id: FilterText | None = None
    query_id: FilterText | None = Field(default=None, description="The query with this id and the events linked to it")
    type: Kind | None = Field(default=None, description="Only queries or only events")
    event_type: list[FilterText] = Field(default_factory=list, max_length=MAX_EVENT_TYPES,
                                         description="Repeatable; implies events only")

    @field_validator("since", "until", mode="before")
    @classmethod
    def _require_iso_8601(cls, value: object) -> object:
        # pydantic would also read "0.5" or 1700000000 as Unix time; the contract is ISO-8601 only.
        if value is not None and not (isinstance(value, datetime) or _ISO_DATE.match(str(value))):
            raise ValueError("must be an ISO-8601 date or date-time, e.g. 2026-01-31T12:00:00Z")
        return value

    @field_validator("since", "until")
    @classmethod
    def _to_utc_ms(cls, value: datetime | None) -> datetime | None:
        try:
            return None if value is None else ceil_to_ms(as_utc(value))
        except OverflowError:
            raise ValueError("time is out of range") from None

    @model_validator(mode="after")
    def _check_range(self) -> "ExportFilters":
        if self.since and self.until and self.since >= self.until:
            raise ValueError("since must be earlier than until")
        if self.event_type and self.type == Kind.QUERY:
            raise ValueError("event_type selects events; it cannot be combined with type=query")
        return self

    @property
    def kinds(self) -> tuple[Kind, ...]:
        """The collections to read. Queries have no event_type, so that filter means events only."""
        if self.type is not None:
            return (self.type,)
        return (Kind.EVENT,) if self.event_type else (Kind.QUERY, Kind.EVENT)


class ExportParams(ExportFilters):
    """Filters plus the file's shape; this is what an export job stores and replays."""

    format: ExportFormat = ExportFormat.JSON
    flatten: bool = Field(default=False, description="CSV only: one column per extra_data key path")

    @model_validator(mode="after")
    def _check_flatten(self) -> "ExportParams":
        if self.flatten and self.format is not ExportFormat.CSV:
            raise ValueError("flatten applies to format=csv only")
        return self


def as_utc(value: datetime) -> datetime:
    """A time without an offset is taken as UTC, as every stored timestamp is."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def ceil_to_ms(value: datetime) -> datetime:
    """BSON dates hold milliseconds; rounding up keeps `>= since` and `< until` exact."""
    extra_us = value.microsecond % 1000
    return value if extra_us == 0 else value + timedelta(microseconds=1000 - extra_us)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_epoch_ms(value: datetime) -> int:
    return (as_utc(value) - _EPOCH) // timedelta(milliseconds=1)


def from_epoch_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)
