"""MongoDB filters built from untrusted values: a value always matches as a plain value.

`{"user_id": value}` is an operator injection waiting to happen as soon as `value` comes from
JSON (`{"$ne": null}` matches every user). Wrapping every value in `$eq` / `$in` makes MongoDB
compare it literally, whatever it is, and `plain_value` refuses containers outright, so a filter
never silently matches something the caller did not mean.
"""

from collections.abc import Iterable
from datetime import datetime
from typing import Any

PlainValue = str | int | float | bool | datetime | None


class FilterValueError(ValueError):
    """A filter value that is not a plain value; the message names the field."""


def plain_value(field: str, value: Any) -> PlainValue:
    """`value` itself if it is a string, number, boolean, datetime or null; FilterValueError otherwise."""
    if value is None or isinstance(value, str | bool | int | float | datetime):
        return value
    raise FilterValueError(f"{field} must be a plain value, not {type(value).__name__}")


def equals(field: str, value: Any) -> dict[str, Any]:
    """`{field: {"$eq": value}}`: matches the literal value, even one shaped like `{"$ne": null}`."""
    _check_field(field)
    return {field: {"$eq": plain_value(field, value)}}


def one_of(field: str, values: Iterable[Any]) -> dict[str, Any]:
    """`{field: {"$in": [...]}}` for a repeated filter such as `event_type=click&event_type=scroll`."""
    _check_field(field)
    return {field: {"$in": [plain_value(field, value) for value in values]}}


def _check_field(field: str) -> None:
    # Field names come from our code, never from the client; this guards against a refactor that changes that.
    if not field or field.startswith("$") or "\x00" in field:
        raise FilterValueError(f"not a filterable field name: {field!r}")
