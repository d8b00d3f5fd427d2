"""The ingest routes, the hot path: no dependency injection, and answers serialised here.

py-spy under `make bench`: FastAPI's dependency solving and response-model validation cost more
than everything `/log_event` itself does. So these endpoints take only the request, and
`api.fastpath` calls them without FastAPI's router at all. Their OpenAPI entries are declared as usual.
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
from api.openapi import ERROR_RESPONSES, batch_json_body, json_body
from api.schemas import BatchPartialOut, BatchQueuedOut, EventIn, EventResultOut, QueuedOut
from shared.records import utc_now_ms

router = APIRouter(tags=["ingest"])


@router.post(
    "/log_event",
    status_code=202,
    response_model=QueuedOut,
    openapi_extra=json_body(EventIn),
    responses=ERROR_RESPONSES,
)
async def log_event(request: Request) -> Response:
    """Queue one interaction. Accepts application/json and text/plain (navigator.sendBeacon)."""
    received_at = utc_now_ms()
    state = app_state(request)
    check_ingest_key(request, state)
    body = await read_json_body(request, state.settings.MAX_EVENT_BYTES, state.limits)
    event = validate_body(EventIn, body, state.limits)
    record = build_event_record(event, body, received_at, stamp=state.experiments.stamp(event.user_id))
    status = await queue_records(state, [record])
    # QueuedOut's JSON, written directly: a hex id and a fixed word need no escaping or validation.
    return _json(orjson.dumps({"status": status, "id": record.id}), 202)


@router.post(
    "/log_events",
    status_code=202,
    response_model=BatchQueuedOut | BatchPartialOut,
    response_model_exclude_none=True,  # a result has an id or an error, never both
    openapi_extra=batch_json_body(EventIn),
    responses={**ERROR_RESPONSES,
               207: {"model": BatchPartialOut, "description": "Some events are invalid; the valid ones are queued"}},
)
async def log_events(request: Request) -> Response:
    """Queue a batch in one Redis round trip. 202 if every event is valid, 207 with a result per event if not."""
    received_at = utc_now_ms()
    state = app_state(request)
    check_ingest_key(request, state)
    settings = state.settings
    body = await read_json(request, settings.MAX_BATCH_BYTES)
    events, sent_at = read_envelope(body, settings.MAX_BATCH_EVENTS)
    outcome = build_batch(events, sent_at, received_at, state.limits, settings.MAX_EVENT_BYTES,
                          stamp_for=state.experiments.stamp)
    if not outcome.records:
        raise ApiError(422, "no event in the batch is valid; nothing was queued", results=outcome.results)
    status = await queue_records(state, outcome.records)
    if not outcome.rejected:
        return _json(orjson.dumps({"status": status, "ids": [record.id for record in outcome.records]}), 202)
    partial = BatchPartialOut(status=status, accepted=len(outcome.records), rejected=outcome.rejected,
                              results=[EventResultOut(**result) for result in outcome.results])
    # Error messages may hold any text the client sent: pydantic writes it as FastAPI would have.
    return _json(partial.model_dump_json(exclude_none=True).encode(), 207)


def _json(body: bytes, status: int) -> Response:
    return Response(body, status_code=status, media_type="application/json")
