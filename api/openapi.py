"""OpenAPI pieces: hand-read request bodies (to accept text/plain beacons) and the one error shape.

The schema says what the API really accepts, so schemathesis (tests/api/test_schemathesis.py) can
hold the API to it in both directions: valid requests accepted, invalid ones refused with a 4xx.
"""

import copy
from typing import Any

from fastapi import FastAPI

from api.limits import Limits
from api.schemas import ClientBody, ErrorOut
from api.storable import INT64_MAX, INT64_MIN
from api.stream_events import event_stream_schema

STORABLE_REF = {"$ref": "#/components/schemas/StorableValue"}
KEY_PATTERN = "^([^$\x00][^\x00]*)?$"  # no leading '$', no NUL
STORABLE_OBJECT = {"type": "object", "propertyNames": {"pattern": KEY_PATTERN}, "additionalProperties": STORABLE_REF}
# What api.storable accepts; the walk there is what enforces it (plus depth and key count).
STORABLE_VALUE: dict[str, Any] = {
    "description": "Any JSON value MongoDB can store: integers within int64, no NaN or Infinity, object keys "
                   "without a leading '$' or NUL, nested at most MAX_EXTRA_DEPTH levels, MAX_EXTRA_KEYS keys in all.",
    "anyOf": [
        {"type": "string"},
        {"type": "integer", "minimum": INT64_MIN, "maximum": INT64_MAX},
        # A float literal may be integral and huge (1e52); JSON Schema cannot tell it from an integer
        # literal, which must fit int64. So the schema allows all numbers and the API refuses big integers.
        {"type": "number"},
        {"type": "boolean"},
        {"type": "null"},
        {"type": "array", "items": STORABLE_REF},
        STORABLE_OBJECT,
    ],
}

_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}}}


def _error(description: str, *, retry_after: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {"model": ErrorOut, "description": description}
    if retry_after:
        response["headers"] = _RETRY_AFTER
    return response


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _error("Body is empty, not UTF-8, or not JSON"),
    401: _error("Missing or wrong key"),
    403: _error("Origin not in CORS_ORIGINS"),
    413: _error("Body too large"),
    415: _error("Unsupported content type or encoding"),
    422: _error("Body fails validation or cannot be stored; `fields` names each offending field"),
    503: _error("Queue full or storage unavailable", retry_after=True),
}
QUERY_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": 'The answer: JSON, or server-sent events with `"stream": true` or `Accept: text/event-stream`',
          "content": {"text/event-stream": {"schema": event_stream_schema()}}},
    **ERROR_RESPONSES,
    429: _error("Rate limited here (QUERY_RATE_PER_MIN per user, QUERY_IP_RATE_PER_MIN per IP) or by the LLM "
                "provider (Retry-After when it sent one); a provider's 429 is still logged", retry_after=True),
    502: _error("The LLM provider failed (after retries and LLM_FALLBACKS); the attempt is still logged"),
    504: _error("The LLM did not answer within LLM_TIMEOUT_S; the attempt is still logged"),
}


def json_body(model: type[ClientBody]) -> dict[str, Any]:
    """`openapi_extra` for a route that reads `model` by hand, as JSON or as text/plain."""
    return _request_body(client_body_schema(model))


def batch_json_body(event_model: type[ClientBody], max_events: int = 500) -> dict[str, Any]:
    """`openapi_extra` for `/log_events`: `{"events": [<event>, ...], "sent_at"?}`."""
    event = client_body_schema(event_model)
    schema = {
        "type": "object", "title": "EventBatchIn", "required": ["events"], "additionalProperties": False,
        "properties": {
            "events": {"type": "array", "minItems": 1, "maxItems": max_events, "items": event},
            "sent_at": event["properties"]["sent_at"],
        },
    }
    return _request_body(schema)


def _request_body(schema: dict[str, Any]) -> dict[str, Any]:
    content = {"schema": schema}
    return {"requestBody": {"required": True, "content": {"application/json": content, "text/plain": content}}}


def client_body_schema(model: type[ClientBody]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    # Unknown fields are stored as sent, so they must be storable and must not be a server-set name.
    schema["additionalProperties"] = STORABLE_REF
    schema["propertyNames"] = {"pattern": KEY_PATTERN, "not": {"enum": sorted(model.server_fields)}}
    if "extra_data" in schema["properties"]:
        schema["properties"]["extra_data"] = {"anyOf": [STORABLE_OBJECT, {"type": "null"}], "title": "Extra Data"}
    return schema


def install_openapi(app: FastAPI, limits: Limits) -> None:
    """Add StorableValue, the app's configured string limits, and the real shape of FastAPI's 422s."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            # A copy: FastAPI shares the routes' openapi_extra dicts between every app in the process.
            schema = copy.deepcopy(generate())
            _apply_limits(schema, limits)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components["StorableValue"] = copy.deepcopy(STORABLE_VALUE)
            for operation in (op for path in schema.get("paths", {}).values() for op in path.values()):
                _replace_validation_response(operation.get("responses", {}))
            for unused in ("HTTPValidationError", "ValidationError"):
                components.pop(unused, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _replace_validation_response(responses: dict[str, Any]) -> None:
    response = responses.get("422")
    if response and "HTTPValidationError" in str(response.get("content", "")):
        responses["422"] = {"description": "Validation failed; `fields` names each offending field",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}}


def _apply_limits(node: Any, limits: Limits) -> None:
    """`x-limit: max_id_chars` (from `api.schemas.MaxChars`) becomes `maxLength: <configured value>`."""
    if isinstance(node, dict):
        if (name := node.pop("x-limit", None)) is not None:
            node["maxLength"] = getattr(limits, name)
        for child in node.values():
            _apply_limits(child, limits)
    elif isinstance(node, list):
        for child in node:
            _apply_limits(child, limits)
