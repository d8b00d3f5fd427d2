"""Refuse at the door what MongoDB would reject later, so no poison record reaches the queue."""

import json
from dataclasses import dataclass
from typing import Any

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class NonFinite:
    """Stands in for NaN/Infinity while parsing, so the walk can name the field that held it."""

    def __init__(self, literal: str) -> None:
        self.literal = literal


def parse_json(raw: bytes) -> Any:
    """Strict JSON: big integers stay exact (orjson would turn them into floats)."""
    return json.loads(raw, parse_constant=NonFinite)


@dataclass(frozen=True)
class Limits:
    max_depth: int
    max_keys: int


def storability_errors(value: Any, limits: Limits, path: str = "") -> list[dict[str, str]]:
    """Every problem found, as `{"field", "message"}`; empty when the value is storable."""
    errors: list[dict[str, str]] = []
    key_count = 0
    # An explicit stack: a hostile body nested 100k deep must not hit Python's recursion limit.
    stack: list[tuple[Any, str, int]] = [(value, path, 1)]
    while stack and len(errors) < 20:
        item, where, depth = stack.pop()
        if isinstance(item, dict | list) and depth > limits.max_depth:
            errors.append(_error(where, f"is nested deeper than {limits.max_depth} levels"))
            continue
        if isinstance(item, dict):
            key_count += len(item)
            for key, child in item.items():
                child_path = f"{where}.{key}" if where else key
                if problem := _key_problem(key):
                    errors.append(_error(child_path, problem))
                stack.append((child, child_path, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{i}]", depth + 1) for i, child in enumerate(item))
        elif problem := _scalar_problem(item):
            errors.append(_error(where, problem))
    if key_count > limits.max_keys:
        errors.append(_error(path or "body", f"has {key_count} keys; the limit is {limits.max_keys}"))
    return errors


def _key_problem(key: str) -> str | None:
    if "\x00" in key:
        return "key contains a NUL character"
    if key.startswith("$"):
        return "keys starting with '$' are reserved by MongoDB"
    if not _is_valid_unicode(key):
        return "key contains a lone UTF-16 surrogate"
    return None


def _scalar_problem(value: Any) -> str | None:
    if isinstance(value, NonFinite):
        return f"{value.literal} is not a valid JSON number"
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
        return "integer is outside the 64-bit range MongoDB can store"
    if isinstance(value, str) and not _is_valid_unicode(value):
        return "string contains a lone UTF-16 surrogate"
    return None


def _is_valid_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _error(field: str, message: str) -> dict[str, str]:
    return {"field": field or "body", "message": message}
