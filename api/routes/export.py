from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pymongo.errors import PyMongoError

from api.auth import AdminDep
from api.deps import StateDep
from api.errors import ApiError
from shared.export import iter_export_records, json_array_chunks

router = APIRouter(tags=["export"])


@router.get("/export_data", responses={200: {"content": {"application/json": {}}}})
async def export_data(state: StateDep, _: AdminDep) -> StreamingResponse:
    """Every query and event, ordered by timestamp, streamed as one JSON array."""
    # A started stream cannot turn into a JSON error, so check MongoDB before starting it.
    try:
        await state.db.command("ping")
    except PyMongoError:
        raise ApiError(503, "MongoDB is unavailable; retry later",
                       headers={"Retry-After": str(state.settings.RETRY_AFTER_S)}) from None
    chunks = json_array_chunks(iter_export_records(state.db))
    return StreamingResponse(chunks, media_type="application/json")
