"""The fast ways must give exactly what the strict ways give: jiter against the strict parser, and the
storability pre-check against the full walk. Seeded random documents, so a failure reproduces."""

import json
import math
import random
from typing import Any

import pytest

from api.storable import DuplicateKeys, Limits, _is_plainly_storable, _parse_strictly, _walk_for_errors, parse_json

LIMITS = Limits(max_depth=4, max_keys=40)
_KEYS = ["a", "user_id", "é", "🚀", "$set", "a$b", "a.b", "\x00", "\ud800", "", "k" * 30]
_STRINGS = ["", "plain", "two\nlines", "tab\t", "quote\"", "é", "🚀", "\ud800", "\x00", "$5", "\\"]


def _value(rng: random.Random, depth: int) -> Any:
    pick = rng.randrange(10 if depth < 6 else 8)
    if pick == 0:
        return rng.choice([None, True, False])
    if pick == 1:
        return rng.choice([0, -1, 2**63 - 1, -(2**63), 2**63, -(2**63) - 1, 10**25, rng.randrange(-10**6, 10**6)])
    if pick == 2:
        return rng.choice([0.0, -0.0, 0.1, 1e22, 1e-7, 5e-324, 1.7976931348623157e308, rng.uniform(-1e9, 1e9),
                           math.inf, rng.random() * 10 ** rng.randrange(-300, 300)])
    if pick in (3, 4, 5):
        return rng.choice(_STRINGS)
    if pick in (6, 7):
        return "".join(rng.choice("ab$\x00é\U0001f680\ud800") for _ in range(rng.randrange(4)))
    if pick == 8:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(_KEYS): _value(rng, depth + 1) for _ in range(rng.randrange(5))}


def _texts(value: Any, rng: random.Random) -> list[bytes]:
    """The same value as JSON several ways: escaped or raw UTF-8, floats as repr and with exponents."""
    try:
        ascii_text = json.dumps(value, ensure_ascii=True)
    except ValueError:
        return []
    texts = [ascii_text.encode()]
    try:
        texts.append(json.dumps(value, ensure_ascii=False, indent=rng.choice([None, 1])).encode())
    except UnicodeEncodeError:  # a lone surrogate has no UTF-8 form: only the escaped text exists
        pass
    return texts


@pytest.mark.parametrize("seed", range(20))
def test_jiter_gives_what_the_strict_parser_gives(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(300):
        for text in _texts(_value(rng, 0), rng):
            strict = _parse_strictly(text)
            fast = parse_json(text)
            assert _same(fast, strict), text


@pytest.mark.parametrize("text", [b'{"a": 1, "a": 2}', b'{"x": {"b": 1, "b": 1}}', b"[NaN]", b"[-Infinity]",
                                  b'["\\ud800"]', b"[" + b"9" * 5000 + b"]", b'\xef\xbb\xbf{"a": 1}',
                                  '{"a": "é"}'.encode("utf-16")])
def test_what_jiter_refuses_is_parsed_strictly(text: bytes) -> None:
    assert _same(parse_json(text), _parse_strictly(text))


def test_duplicate_keys_still_become_a_marker() -> None:
    parsed = parse_json(b'{"a": {"k": 1, "k": 2}}')

    assert isinstance(parsed["a"], DuplicateKeys) and parsed["a"].duplicates == ["k"]


@pytest.mark.parametrize("seed", range(20))
def test_the_storability_pre_check_passes_only_what_the_walk_passes(seed: int) -> None:
    rng = random.Random(1000 + seed)
    passed = 0
    for _ in range(500):
        value = _value(rng, 0)
        if _is_plainly_storable(value, LIMITS):
            passed += 1
            assert _walk_for_errors(value, LIMITS, "") == [], value
    assert passed > 50  # the generator makes plenty of storable documents too


def _same(a: Any, b: Any) -> bool:
    """Equal, with types (1 is not 1.0 nor True), -0.0 told from 0.0, and markers compared by literal."""
    if type(a) is not type(b):
        return _marker_literal(a) == _marker_literal(b) is not None
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b) or (math.isnan(a) and math.isnan(b))
    if hasattr(a, "literal"):
        return a.literal == b.literal
    return a == b


def _marker_literal(value: Any) -> str | None:
    """An integer outside int64: jiter gives the int, the strict parser a marker; both are refused alike."""
    if type(value) is int:
        return str(value)
    return getattr(value, "literal", None)
