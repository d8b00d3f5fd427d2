"""`with_limits` checks the configured lengths inside pydantic: the same errors as `MaxChars`, for every model."""

import pytest
from pydantic import BaseModel, ValidationError

from api.limits import Limits
from api.schemas import EventIn, QueryIn, with_limits

TIGHT = Limits(max_id_chars=5, max_event_type_chars=3, max_url_chars=12, max_query_chars=4)
EVENT = {"user_id": "u", "event_type": "ab"}
QUERY = {"user_id": "u", "query": "hi"}
CASES = [
    (EventIn, {**EVENT, "user_id": "123456"}),
    (EventIn, {**EVENT, "event_type": "abcd", "session_id": "123456"}),
    (EventIn, {**EVENT, "target_url": "https://example.com/long", "page_url": "https://x.io"}),
    (EventIn, {**EVENT, "event_id": "123456", "query_id": "12345", "query": "abcde"}),
    (EventIn, {**EVENT, "user_id": ""}),  # too short: the min_length beside the limit still applies
    (EventIn, {**EVENT, "user_id": 12}),  # strict: no coercion
    (EventIn, {**EVENT, "session_id": None, "extra_data": {"k": "x" * 50}}),  # extra_data has no length limit
    (QueryIn, {**QUERY, "query": "hello"}),
    (QueryIn, {**QUERY, "session_id": "123456", "user_id": "abcdef"}),
    (QueryIn, QUERY),
]


def _outcome(model: type[BaseModel], body: dict, **options: object) -> object:
    try:
        return model.model_validate(body, **options).model_dump(exclude_unset=True)
    except ValidationError as exc:
        return [(error["type"], error["loc"], error["msg"]) for error in exc.errors()]


@pytest.mark.parametrize(("model", "body"), CASES)
def test_the_limited_model_answers_as_the_context_checked_one(model: type[BaseModel], body: dict) -> None:
    assert _outcome(with_limits(model, TIGHT), body) == _outcome(model, body, context=TIGHT)


def test_the_configured_limit_is_the_one_applied() -> None:
    loose = with_limits(EventIn, Limits(max_id_chars=500))

    assert loose.model_validate({**EVENT, "user_id": "x" * 500}).user_id == "x" * 500
    with pytest.raises(ValidationError, match="at most 5 characters"):
        with_limits(EventIn, TIGHT).model_validate({**EVENT, "user_id": "x" * 6})


def test_limited_models_are_built_once_and_keep_the_public_model() -> None:
    assert with_limits(EventIn, TIGHT) is with_limits(EventIn, Limits(max_id_chars=5, max_event_type_chars=3,
                                                                       max_url_chars=12, max_query_chars=4))
    assert issubclass(with_limits(EventIn, TIGHT), EventIn)
    assert "x-limit" in str(EventIn.model_json_schema())  # the public schema still names the setting
