"""The ingest routes. They are the hot path: no dependency injection, and answers serialised by hand.

Measured with `make bench` and py-spy: FastAPI's dependency solving and response-model validation
cost more than everything `/log_event` itself does, so these routes read the state, check the
key, and build their answer directly. Their OpenAPI entries are declared all the same.
"""

import orjson
from fastapi import APIRouter, Request, Response

from api.auth import check_ingest_key
from api.batch import build_batch, read_envelope
from api.body import read_json, read_json_body
from api.build import build_event_record, validate_body
from api.deps import app_state
from api.errors import ApiError
from api.ingest import queue_records
from api.openapi import ERROR_RESPONSES, json_body
from api.schemas import BatchPartialOut, BatchQueuedOut, EventBatchIn, EventIn, QueuedOut
from shared.records import utc_now_ms

router = APIRouter(tags=["ingest"])


def _json(payload: dict, status: int) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


@router.post(
    "/log_event",
    status_code=202,
    openapi_extra=json_body(EventIn),
    response_model=QueuedOut,
    responses=ERROR_RESPONSES,
)
async def log_event(request: Request) -> Response:
    """Queue one interaction. Accepts application/json and text/plain (navigator.sendBeacon), gzip, `?key=`."""
    received_at = utc_now_ms()
    state = app_state(request)
    check_ingest_key(request, state)
    body = await read_json_body(request, state.settings.MAX_EVENT_BYTES, state.limits)
    record = build_event_record(validate_body(EventIn, body), body, received_at)
    status = await queue_records(state, [record])
    return _json({"status": status, "id": record.id}, 202)


@router.post(
    "/log_events",
    status_code=202,
    openapi_extra=json_body(EventBatchIn),
    response_model=BatchQueuedOut,
    responses={**ERROR_RESPONSES,
               207: {"model": BatchPartialOut, "description": "Some events are invalid; the valid ones are queued"}},
)
async def log_events(request: Request) -> Response:
    """Queue a batch in one Redis round trip. 202 if every event is valid, 207 with a result per event if not."""
    received_at = utc_now_ms()
    state = app_state(request)
    check_ingest_key(request, state)
    settings = state.settings
    parsed = await read_json(request, settings.MAX_BATCH_BYTES)
    events, sent_at = read_envelope(parsed.value, settings.MAX_BATCH_EVENTS)
    outcome = build_batch(events, sent_at, received_at, state.limits, settings.MAX_EVENT_BYTES,
                          check_scalars=not parsed.has_storable_scalars)
    if not outcome.records:
        raise ApiError(422, "no event in the batch is valid; nothing was queued", results=outcome.results)
    status = await queue_records(state, outcome.records)
    if not outcome.rejected:
        return _json({"status": status, "ids": [record.id for record in outcome.records]}, 202)
    return _json({"status": status, "accepted": len(outcome.records), "rejected": outcome.rejected,
                  "results": outcome.results}, 207)
