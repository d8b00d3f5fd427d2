from fastapi import APIRouter, Request

from api.auth import IngestKeyDep
from api.body import read_json_body
from api.build import build_event_record, validate_body
from api.deps import StateDep
from api.ingest import queue_records
from api.openapi import ERROR_RESPONSES, json_body
from api.schemas import EventIn, QueuedOut
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
    record = build_event_record(validate_body(EventIn, body, state.limits), received_at)
    status = await queue_records(state, [record])
    return QueuedOut(status=status, id=record.id)
