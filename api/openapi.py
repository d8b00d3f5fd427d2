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
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    content = {"schema": schema}
    return {"requestBody": {"required": True, "content": {"application/json": content, "text/plain": content}}}
