"""The server-sent events of a streamed /query: one model per event, and their OpenAPI description.

In order: `start`, `delta` per token chunk, then `done`, or `error` if the answer breaks after it started.
Each event's `data:` is one JSON object of its model.
"""

from typing import Any

from pydantic import BaseModel, Field

from api.schemas import QueryOut, SourceOut


class StreamStart(BaseModel):
    query_id: str
    model_used: str
    experiment: str | None
    arm: str | None
    source: list[SourceOut] = Field(description="The sources fetched before the answer (none when they come from it).")


class StreamDelta(BaseModel):
    text: str


class StreamDone(QueryOut):
    """What a non-streamed /query returns (`source` as stored), plus the measurements."""

    finish_reason: str | None
    latency_ms: float
    ttft_ms: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None


class StreamError(BaseModel):
    error: str
    status: int = Field(description="What the status code would have been: 502 or 504 (429 before the stream only).")
    query_id: str


EVENTS: dict[str, type[BaseModel]] = {
    "start": StreamStart, "delta": StreamDelta, "done": StreamDone, "error": StreamError,
}


def event_stream_schema() -> dict[str, Any]:
    """OpenAPI 3.1 style: the schema describes one event (`event` name, `data` JSON of its model)."""
    return {
        "description": __doc__.split("\n", 2)[2].strip(),
        "oneOf": [_event_schema(name, model) for name, model in EVENTS.items()],
    }


def _event_schema(name: str, model: type[BaseModel]) -> dict[str, Any]:
    data = model.model_json_schema(mode="serialization", ref_template="#/components/schemas/{model}")
    data.pop("$defs", None)  # SourceOut is in components already, as the JSON answer's
    return {
        "type": "object", "required": ["event", "data"],
        "properties": {
            "event": {"const": name},
            "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": data},
        },
    }
