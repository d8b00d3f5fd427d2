"""Refuse at the door what MongoDB would reject later, so no poison record reaches the queue.

`parse_json` is strict where browsers and SDKs are sloppy: NaN/Infinity, integers outside int64 and
duplicate keys are not silently changed (orjson would turn a big integer into a float, and most JSON
parsers keep one of two duplicate keys); they become markers that `storability_errors` reports with
the path of the field that held them.
"""

import json
import math
from typing import Any

import jiter

from api.limits import Limits

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_ERRORS = 20
_MAX_PATH_CHARS = 200


class JsonBodyError(ValueError):
    """The body is not JSON text at all; `message` says why in words a front-end developer knows."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NonFinite:
    """Stands in for NaN/Infinity while parsing, so the walk can name the field that held it."""

    def __init__(self, literal: str) -> None:
        self.literal = literal


class OutOfRangeInt:
    """An integer literal outside int64; kept as text so a 5000-digit number cannot cost CPU."""

    def __init__(self, literal: str) -> None:
        self.literal = literal


class DuplicateKeys(dict):
    """An object that repeated a key. Which value wins differs between parsers, so refuse it."""

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        seen: set[str] = set()
        repeated: set[str] = set()
        for key, _ in pairs:
            (repeated if key in seen else seen).add(key)
        self.duplicates = sorted(repeated)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    return result if len(result) == len(pairs) else DuplicateKeys(pairs)


def _integer(literal: str) -> int | OutOfRangeInt:
    # int64 has at most 19 digits; checking the length first keeps int() away from huge literals.
    if len(literal) <= 20:
        value = int(literal)
        if INT64_MIN <= value <= INT64_MAX:
            return value
    return OutOfRangeInt(literal)


# Built once: json.loads(**kwargs) would build a decoder per call.
_DECODER = json.JSONDecoder(parse_constant=NonFinite, parse_int=_integer, object_pairs_hook=_object)


def parse_json(raw: bytes) -> Any:
    """Strict JSON from UTF-8 (a BOM is ignored, as RFC 8259 allows), or UTF-16/32 detected as json does.

    jiter (Rust) parses first: it refuses NaN/Infinity, duplicate keys, lone surrogates and anything
    not UTF-8 JSON, and gives what it accepts exactly as the strict parser below would (an integer
    outside int64 is an int, which the storability check refuses with the same message). Whatever it
    refuses goes to the strict parser, for the marker or the message: 2-3x cheaper for every valid body.
    """
    try:
        return jiter.from_json(raw, allow_inf_nan=False, catch_duplicate_keys=True)
    except ValueError:
        return _parse_strictly(raw)


def _parse_strictly(raw: bytes) -> Any:
    try:
        text = raw.decode(json.detect_encoding(raw))
    except UnicodeDecodeError:
        raise JsonBodyError("request body is not valid UTF-8 text") from None
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        # The position helps a developer find the typo; the message holds no request content.
        raise JsonBodyError(f"request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise JsonBodyError("request body is nested too deeply to parse") from None


def storability_errors(value: Any, limits: Limits, path: str = "") -> list[dict[str, str]]:
    """Up to MAX_ERRORS problems, as `{"field", "message"}`; empty when MongoDB can store the value."""
    if _is_plainly_storable(value, limits):
        return []
    return _walk_for_errors(value, limits, path)


def _walk_for_errors(value: Any, limits: Limits, path: str) -> list[dict[str, str]]:
    errors: list[dict[str, str]] = []
    key_count = 0
    # An explicit stack: a hostile body nested 100k deep must not hit Python's recursion limit.
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack and len(errors) < MAX_ERRORS:
        item, where, depth = stack.pop()
        if isinstance(item, dict):
            if depth > limits.max_depth:
                errors.append(_error(where, f"is nested deeper than {limits.max_depth} levels"))
                continue
            key_count += len(item)
            if isinstance(item, DuplicateKeys):
                errors.append(_error(where, f"repeats the key(s) {', '.join(map(repr, item.duplicates[:5]))}"))
            for key, child in item.items():
                child_path = f"{where}.{key}" if where else key
                if problem := _key_problem(key):
                    errors.append(_error(child_path, problem))
                stack.append((child, child_path, depth + 1))
        elif isinstance(item, list):
            if depth > limits.max_depth:
                errors.append(_error(where, f"is nested deeper than {limits.max_depth} levels"))
                continue
            stack.extend((child, f"{where}[{i}]", depth + 1) for i, child in enumerate(item))
        elif problem := _scalar_problem(item):
            errors.append(_error(where, problem))
        if key_count > limits.max_keys:
            errors.append(_error(path, f"has more than {limits.max_keys} keys in total"))
            break
    return errors


def _is_plainly_storable(value: Any, limits: Limits) -> bool:
    """True only when the walk below would find nothing; False sends any doubt to it.

    Every valid body takes this way: no paths built, no call per value, and each object's keys checked
    joined, in three C calls. On `/log_events` it runs once per event, so it is written for speed.
    """
    max_depth, max_keys = limits.max_depth, limits.max_keys
    key_count = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    push = stack.append
    while stack:
        item, depth = stack.pop()
        kind = type(item)
        if kind is dict:
            key_count += len(item)
            if depth > max_depth or key_count > max_keys:
                return False
            keys = "".join(item)
            # A "$" anywhere in the keys, even not leading, goes to the walk: rare, and never a false pass.
            if "$" in keys or "\x00" in keys or not (keys.isascii() or _is_valid_unicode(keys)):
                return False
            children: Any = item.values()
        elif kind is list:
            if depth > max_depth:
                return False
            children = item
        else:
            children = (item,)
            depth -= 1  # a bare scalar body is at the top level, as a field is
        for child in children:
            kind = type(child)
            if kind is str:
                if not (child.isascii() or _is_valid_unicode(child)):
                    return False
            elif kind is dict or kind is list:
                push((child, depth + 1))
            elif kind is int:
                if not INT64_MIN <= child <= INT64_MAX:
                    return False
            elif kind is float:
                if not math.isfinite(child):
                    return False
            elif child is not None and kind is not bool:
                return False
    return True


def _key_problem(key: str) -> str | None:
    if key.startswith("$"):
        return "keys starting with '$' are not accepted (MongoDB reserves them for operators)"
    if "\x00" in key:
        return "key contains a NUL character"
    if not key.isascii() and not _is_valid_unicode(key):
        return "key contains a lone UTF-16 surrogate"
    return None


def _scalar_problem(value: Any) -> str | None:
    if isinstance(value, str):
        return None if value.isascii() or _is_valid_unicode(value) else "string contains a lone UTF-16 surrogate"
    if isinstance(value, float):
        # 1e309 parses to inf without any NaN/Infinity literal.
        return None if math.isfinite(value) else "number is too large for a 64-bit float"
    if isinstance(value, NonFinite):
        return f"{value.literal} is not a valid JSON number"
    if isinstance(value, OutOfRangeInt) or (type(value) is int and not INT64_MIN <= value <= INT64_MAX):
        return "integer is outside the 64-bit range MongoDB can store"
    return None


def _is_valid_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _error(field: str, message: str) -> dict[str, str]:
    if len(field) > _MAX_PATH_CHARS:
        field = field[:_MAX_PATH_CHARS] + "…"
    if not field.isascii() and not _is_valid_unicode(field):
        # The path may hold the very surrogate being refused; JSON output needs valid text.
        field = field.encode("utf-8", "backslashreplace").decode("utf-8")
    return {"field": field or "body", "message": message}
