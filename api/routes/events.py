from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.auth import IngestKeyDep
from api.batch import build_batch, read_envelope
from api.body import read_json_body
from api.build import build_event_record, validate_body
from api.deps import StateDep
from api.errors import ApiError
from api.ingest import queue_records
from api.openapi import ERROR_RESPONSES, json_body
from api.schemas import BatchPartialOut, BatchQueuedOut, EventBatchIn, EventIn, QueuedOut
from shared.records import utc_now_ms

router = APIRouter(tags=["ingest"])


@router.post(
    "/log_event",
    status_code=202,
    openapi_extra=json_body(EventIn),
    responses=ERROR_RESPONSES,
)
async def log_event(request: Request, state: StateDep, _: IngestKeyDep) -> QueuedOut:
    """Queue one interaction. Accepts application/json and text/plain (navigator.sendBeacon)."""
    received_at = utc_now_ms()
    body = await read_json_body(request, state.settings.MAX_EVENT_BYTES, state.limits)
    record = build_event_record(validate_body(EventIn, body), received_at)
    status = await queue_records(state, [record])
    return QueuedOut(status=status, id=record.id)


@router.post(
    "/log_events",
    status_code=202,
    openapi_extra=json_body(EventBatchIn),
    response_model=BatchQueuedOut,
    responses={**ERROR_RESPONSES,
               207: {"model": BatchPartialOut, "description": "Some events are invalid; the valid ones are queued"}},
)
async def log_events(request: Request, state: StateDep, _: IngestKeyDep) -> JSONResponse:
    """Queue a batch in one Redis round trip. 202 if every event is valid, 207 with a result per event if not."""
    received_at = utc_now_ms()
    settings = state.settings
    body = await read_json_body(request, settings.MAX_BATCH_BYTES, limits=None)
    events, sent_at = read_envelope(body, settings.MAX_BATCH_EVENTS)
    outcome = build_batch(events, sent_at, received_at, state.limits, settings.MAX_EVENT_BYTES)
    if not outcome.records:
        raise ApiError(422, "no event in the batch is valid; nothing was queued", results=outcome.results)
    status = await queue_records(state, outcome.records)
    if not outcome.rejected:
        return JSONResponse({"status": status, "ids": [r.id for r in outcome.records]}, status_code=202)
    return JSONResponse({"status": status, "accepted": len(outcome.records), "rejected": outcome.rejected,
                         "results": outcome.results}, status_code=207)
