import pytest

from api.storable import Limits, parse_json, storability_errors

LIMITS = Limits(max_depth=33, max_keys=1000)


@pytest.mark.parametrize(("raw", "expected"), [
    (b'{"n": 18446744073709551616}', 2**64),  # orjson would give a float; the guard keeps it exact
    (b'{"n": -9223372036854775809}', -(2**63) - 1),
    (b'{"n": 9223372036854775807}', 2**63 - 1),
    (b'{"n": 12}', 12),
])
def test_parse_json_keeps_integers_exact(raw: bytes, expected: int) -> None:
    value = parse_json(raw)["n"]

    assert value == expected and type(value) is int


@pytest.mark.parametrize(("raw", "field", "message"), [
    (b'{"a": {"n": 18446744073709551616}}', "a.n", "integer is outside the 64-bit range MongoDB can store"),
    (b'{"a": [1, NaN]}', "a[1]", "NaN is not a valid JSON number"),
    (b'{"a": 1e400}', "a", "number is too large to store"),
    (b'{"a": "\\ud800"}', "a", "string contains a lone UTF-16 surrogate"),
    (b'{"a": {"$set": 1}}', "a.$set", "keys starting with '$' are reserved by MongoDB"),
])
def test_unstorable_values_are_named_by_path(raw: bytes, field: str, message: str) -> None:
    assert storability_errors(parse_json(raw), LIMITS) == [{"field": field, "message": message}]


def test_errors_come_in_document_order_and_are_capped() -> None:
    errors = storability_errors(parse_json(b'{"l": [' + b",".join([b"NaN"] * 30) + b"]}"), LIMITS)

    assert [e["field"] for e in errors] == [f"l[{i}]" for i in range(20)]
