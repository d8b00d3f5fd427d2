"""OpenAPI pieces for routes that read their body by hand (to accept text/plain beacons)."""

from typing import Any

from pydantic import BaseModel

from api.schemas import ErrorOut

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": text}
    for code, text in {
        400: "Body is empty or not JSON",
        401: "Missing or wrong key",
        413: "Body too large",
        415: "Unsupported content type or encoding",
        422: "Body fails validation",
        503: "Queue full or storage unavailable; see Retry-After",
    }.items()
}


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    # Nested models are inlined: `openapi_extra` cannot add them to components/schemas.
    schema = model.model_json_schema()
    content = {"schema": _inline_refs(schema, schema.pop("$defs", {}))}
    return {"requestBody": {"required": True, "content": {"application/json": content, "text/plain": content}}}


def _inline_refs(node: Any, defs: dict[str, Any]) -> Any:
    """Replace each `{"$ref": "#/$defs/Name"}` by its definition (our request models are not recursive)."""
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        if ref.startswith("#/$defs/"):
            return _inline_refs(defs[ref.removeprefix("#/$defs/")], defs)
        return {key: _inline_refs(value, defs) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline_refs(item, defs) for item in node]
    return node
