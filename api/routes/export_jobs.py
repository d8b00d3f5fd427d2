"""Background exports: queue an arq job, follow it, download the finished file."""

import logging
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from pymongo.errors import PyMongoError
from redis.exceptions import RedisError

from api.auth import AdminDep
from api.deps import AppState, StateDep
from api.downloads import download_response
from api.errors import ApiError
from api.openapi import ERROR_RESPONSES
from shared import export_jobs as jobs
from shared.export_params import ExportParams

logger = logging.getLogger(__name__)
router = APIRouter(tags=["export"])

JobId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="The job_id POST /exports returned")]
_ERRORS = {**{code: ERROR_RESPONSES[code] for code in (401, 422, 503)},
           403: ERROR_RESPONSES[401] | {"description": "ADMIN_API_KEY is not configured"}}
_NOT_FOUND = {"model": ERROR_RESPONSES[401]["model"], "description": "No such job (or it expired)"}


class ExportJobQueued(BaseModel):
    job_id: str
    state: str
    status_url: str


@router.post("/exports", status_code=202, responses={**_ERRORS, 400: ERROR_RESPONSES[400], 413: ERROR_RESPONSES[413]})
async def create_export(params: ExportParams, state: StateDep, _: AdminDep, response: Response) -> ExportJobQueued:
    """Queue an export job for the worker; poll GET /exports/{job_id}, then download."""
    job_id = uuid.uuid4().hex
    await _submit(state, job_id, params)
    logger.info("export job queued", extra={"job_id": job_id, "format": params.format.value})
    response.headers["Location"] = f"/exports/{job_id}"
    return ExportJobQueued(job_id=job_id, state=jobs.JobState.QUEUED.value, status_url=f"/exports/{job_id}")


@router.get("/exports/{job_id}", responses={**_ERRORS, 404: _NOT_FOUND})
async def export_status(job_id: JobId, state: StateDep, _: AdminDep) -> dict[str, Any]:
    """State, records written so far, errors, and the download URL once done."""
    return jobs.public_view(await _find(state, job_id))


@router.get("/exports/{job_id}/download", response_class=StreamingResponse, responses={
    **_ERRORS, 404: _NOT_FOUND, 409: _NOT_FOUND | {"description": "The job has not finished"},
    416: _NOT_FOUND | {"description": "Range not satisfiable"}})
async def download_export(job_id: JobId, request: Request, state: StateDep, _: AdminDep) -> StreamingResponse:
    """The finished file; supports `Range: bytes=...` (206) for resumed downloads."""
    job = await _find(state, job_id)
    if job["state"] != jobs.JobState.DONE.value:
        raise ApiError(409, f"the export is {job['state']}; download it once its state is done", state=job["state"])
    try:
        return await download_response(state.db, job, request.headers)
    except PyMongoError:
        raise _unavailable(state, "MongoDB is unavailable; retry later") from None


async def _submit(state: AppState, job_id: str, params: ExportParams) -> None:
    try:
        await jobs.create_job(state.db, job_id, params, state.settings.EXPORT_TTL_S)
    except PyMongoError:
        raise _unavailable(state, "MongoDB is unavailable; retry later") from None
    try:
        await state.jobs.enqueue_job(jobs.JOB_FUNCTION, job_id, _job_id=job_id)
    except (RedisError, OSError):
        await jobs.delete_job(state.db, job_id)
        raise _unavailable(state, "Redis is unavailable, so the job cannot be queued; retry later") from None


async def _find(state: AppState, job_id: str) -> dict[str, Any]:
    try:
        job = await jobs.get_job(state.db, job_id)
    except PyMongoError:
        raise _unavailable(state, "MongoDB is unavailable; retry later") from None
    if job is None:
        raise ApiError(404, "no such export job (finished exports expire after EXPORT_TTL_S)")
    return job


def _unavailable(state: AppState, message: str) -> ApiError:
    return ApiError(503, message, headers={"Retry-After": str(state.settings.RETRY_AFTER_S)})
