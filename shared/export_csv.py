"""CSV columns and rows: the fixed columns, `extra_data` as JSON or flattened, then what is left."""

import csv
import io
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from shared.export import ExportPlan, dumps_value, iso_ms, open_cursors

FIXED_COLUMNS = (
    "type", "id", "timestamp", "event_time", "user_id", "session_id", "event_type", "query", "response",
    "target_url", "page_url", "query_id", "model_used", "latency_ms", "prompt_tokens", "completion_tokens",
    "cost_usd", "error",
)
EXTRA = "extra_data"
# Stored fields outside the fixed set, so nothing a participant sent is lost in CSV.
TAIL_COLUMNS = ("event_id", "client_timestamp", "source", "other_fields")
_KNOWN = frozenset(FIXED_COLUMNS) | {EXTRA} | frozenset(TAIL_COLUMNS[:-1])


class TooManyColumns(ValueError):
    pass


def csv_columns(extra_paths: Iterable[str] | None = None) -> tuple[str, ...]:
    """`extra_paths=None`: one `extra_data` JSON column; otherwise one `extra_data.<path>` column each."""
    middle = (EXTRA,) if extra_paths is None else tuple(f"{EXTRA}.{path}" for path in sorted(extra_paths))
    return FIXED_COLUMNS + middle + TAIL_COLUMNS


async def collect_extra_paths(db: AsyncDatabase, plan: ExportPlan, max_columns: int) -> set[str]:
    """One pass over `extra_data` alone, to learn the flattened columns before the header is written.

    It costs a read of every selected record's extra_data; memory grows only with the number of
    distinct key paths, which is capped.
    """
    paths: set[str] = set()
    for cursor in open_cursors(db, plan, projection={"_id": 0, EXTRA: 1}).values():
        try:
            async for document in cursor:
                extra = document.get(EXTRA)
                if isinstance(extra, dict):
                    paths.update(flatten(extra))
                    if len(paths) > max_columns:
                        raise TooManyColumns(f"extra_data has more than {max_columns} distinct keys")
        finally:
            await cursor.close()
    return paths


def flatten(value: dict[str, Any]) -> dict[str, Any]:
    """Nested objects become dotted paths; lists and scalars stay values."""
    return flatten_paths(value)[0]


def flatten_paths(value: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """(paths, ambiguous): `ambiguous` when two values had one path ({"a.b": 1, "a": {"b": 2}}),
    of which the first is kept."""
    flat: dict[str, Any] = {}
    ambiguous = False
    stack: list[tuple[dict[str, Any], str]] = [(value, "")]
    while stack:
        current, prefix = stack.pop()
        for key, item in current.items():
            path = f"{prefix}{key}"
            if isinstance(item, dict) and item:
                stack.append((item, f"{path}."))
            elif path in flat:
                ambiguous = True
            else:
                flat[path] = item
    return flat, ambiguous


def cell(value: Any) -> str:
    """Empty for missing, JSON for objects and lists, ISO-8601 Z for times, lowercase booleans."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        return iso_ms(value)
    if isinstance(value, dict | list):
        return dumps_value(value).decode()
    return str(value)


def record_row(record: dict[str, Any], columns: tuple[str, ...], flat_columns: frozenset[str] | None) -> list[str]:
    """`flat_columns`: the `extra_data.*` columns when flattening, else None."""
    added: dict[str, Any] = {}
    if record["type"] == "query" and "query_id" not in record:
        added["query_id"] = record["id"]  # a query's own id is the query_id its clicks carry
    other = {key: item for key, item in record.items() if key not in _KNOWN}
    extra = record.get(EXTRA)
    if flat_columns is not None and isinstance(extra, dict):
        paths, ambiguous = flatten_paths(extra)
        for path, item in paths.items():
            column = f"{EXTRA}.{path}"
            if column in flat_columns:
                added[column] = item
            else:  # a key first seen after the columns were planned: kept, not dropped
                other.setdefault(EXTRA, {})[path] = item
        if ambiguous:  # a dotted key and a nested one name the same column: the whole object, as stored
            other[EXTRA] = extra
    if other:
        added["other_fields"] = other
    get = ({**record, **added} if added else record).get
    # Most cells are already strings; only the rest pay for a call.
    return [value if type(value) is str else cell(value) for value in map(get, columns)]


class CsvEncoder:
    """Turns record batches into UTF-8 CSV bytes (RFC 4180 quoting, CRLF line ends)."""

    def __init__(self, columns: tuple[str, ...]) -> None:
        self.columns = columns
        self.flat_columns = None if EXTRA in columns else frozenset(c for c in columns if c.startswith(f"{EXTRA}."))
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer)

    def header(self) -> bytes:
        self._writer.writerow(self.columns)
        return self._take()

    def encode(self, records: list[dict[str, Any]]) -> bytes:
        self._writer.writerows(record_row(record, self.columns, self.flat_columns) for record in records)
        return self._take()

    def _take(self) -> bytes:
        data = self._buffer.getvalue().encode()
        self._buffer.seek(0)
        self._buffer.truncate()
        return data
