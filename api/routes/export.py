from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from api.auth import AdminDep
from api.deps import StateDep
from api.exporting import ExportQuery, start_export
from api.openapi import ERROR_RESPONSES
from shared.export_formats import MEDIA_TYPES

router = APIRouter(tags=["export"])

_RESPONSES = {
    200: {"content": {media_type: {} for media_type in MEDIA_TYPES.values()},
          "description": "The records, streamed; paged responses carry X-Next-Cursor and X-Has-More"},
    **{code: ERROR_RESPONSES[code] for code in (401, 422, 503)},
    403: ERROR_RESPONSES[401] | {"description": "ADMIN_API_KEY is not configured"},
}


@router.get("/export_data", response_class=StreamingResponse, responses=_RESPONSES)
async def export_data(state: StateDep, _: AdminDep, query: Annotated[ExportQuery, Query()]) -> StreamingResponse:
    """Queries and events in (timestamp, id) order as JSON, NDJSON or CSV; gzip when accepted."""
    return await start_export(state, query)
