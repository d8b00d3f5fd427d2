import pytest

from api.storable import Limits, NonFinite, parse_json, storability_errors

LIMITS = Limits(max_depth=5, max_keys=10)


def fields(value: object) -> list[str]:
    return [e["field"] for e in storability_errors(value, LIMITS)]


def test_plain_json_is_storable() -> None:
    assert storability_errors({"a": [1, 2.5, "x", None, True, {"b": -(2**63)}]}, LIMITS) == []


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        (b'{"a": {"b": 9223372036854775808}}', "a.b", "64-bit"),
        (b'{"a": [1, -9223372036854775809]}', "a[1]", "64-bit"),
        (b'{"a": NaN}', "a", "NaN"),
        (b'{"a": {"b": -Infinity}}', "a.b", "Infinity"),
        (b'{"a": "\\ud800"}', "a", "surrogate"),
        (b'{"a\\u0000b": 1}', "a\x00b", "NUL"),
        (b'{"x": {"$where": 1}}', "x.$where", "MongoDB reserves them"),
        (b'{"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}}', "a.b.c.d.e.f", "nested deeper"),
    ],
)
def test_unstorable_values_are_named(body: bytes, field: str, fragment: str) -> None:
    [error] = storability_errors(parse_json(body), LIMITS)

    assert error["field"] == field
    assert fragment in error["message"]


def test_key_count_is_capped() -> None:
    assert fields({f"k{i}": i for i in range(11)}) == ["body"]


def test_dotted_keys_are_allowed() -> None:
    assert storability_errors({"a.b": 1, "c": {"d.e": 2}}, LIMITS) == []


def test_hostile_depth_does_not_recurse() -> None:
    deep: object = 1
    for _ in range(100_000):
        deep = [deep]

    assert fields(deep) == ["[0]" * 6]  # the body is level 0, its members level 1


def test_non_finite_sentinel_keeps_the_literal() -> None:
    assert parse_json(b"[Infinity]")[0].literal == "Infinity"
    assert isinstance(parse_json(b"[NaN]")[0], NonFinite)
