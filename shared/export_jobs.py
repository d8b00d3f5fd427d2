"""Export job state, one MongoDB document per job, shared by the API (create, read) and the worker (run).

A job's file is written to GridFS under an id per attempt (`<job>-<attempt>`). Only the job
document marks a file done, and only after the whole file is written, so a failed or retried
attempt never leaves a truncated file that looks finished.
"""

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from shared.export_params import ExportParams

JOBS = "export_jobs"
BUCKET = "exports"
JOB_FUNCTION = "run_export_job"  # the arq function name the API enqueues and the worker registers


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


def attempt_file_id(job_id: str, attempt: int) -> str:
    return f"{job_id}-{attempt}"


async def create_job(db: AsyncDatabase, job_id: str, params: ExportParams, ttl_s: int) -> None:
    now = datetime.now(UTC)
    await db[JOBS].insert_one({
        "_id": job_id, "state": JobState.QUEUED.value, "params": params.model_dump(mode="json"),
        "attempt": 0, "records_written": 0, "bytes_written": 0, "errors": [],
        "created_at": now, "expires_at": now + timedelta(seconds=ttl_s),
    })


async def get_job(db: AsyncDatabase, job_id: str) -> dict[str, Any] | None:
    return await db[JOBS].find_one({"_id": job_id})


async def delete_job(db: AsyncDatabase, job_id: str) -> None:
    await db[JOBS].delete_one({"_id": job_id})


async def claim_job(db: AsyncDatabase, job_id: str, attempt: int) -> dict[str, Any] | None:
    """Mark the job running under this attempt; None if it is gone or already finished."""
    return await db[JOBS].find_one_and_update(
        {"_id": job_id, "state": {"$in": [JobState.QUEUED.value, JobState.RUNNING.value]}},
        {"$set": {"state": JobState.RUNNING.value, "attempt": attempt, "records_written": 0,
                  "bytes_written": 0, "started_at": datetime.now(UTC)}},
        return_document=ReturnDocument.AFTER,
    )


async def record_progress(db: AsyncDatabase, job_id: str, attempt: int, records: int, size: int) -> None:
    await db[JOBS].update_one({"_id": job_id, "attempt": attempt, "state": JobState.RUNNING.value},
                              {"$set": {"records_written": records, "bytes_written": size}})


async def mark_done(db: AsyncDatabase, job_id: str, attempt: int, file_id: str, filename: str,
                    records: int, size: int, ttl_s: int) -> bool:
    """Only the attempt that still owns the job can finish it; False means a newer attempt took over."""
    now = datetime.now(UTC)
    result = await db[JOBS].update_one(
        {"_id": job_id, "attempt": attempt, "state": JobState.RUNNING.value},
        {"$set": {"state": JobState.DONE.value, "file_id": file_id, "filename": filename,
                  "records_written": records, "bytes_written": size, "finished_at": now,
                  "expires_at": now + timedelta(seconds=ttl_s)}},
    )
    return result.modified_count == 1


async def note_error(db: AsyncDatabase, job_id: str, attempt: int, message: str, *, is_final: bool) -> None:
    """Append the error; the job is failed if it is final, else queued again for its retry."""
    update: dict[str, Any] = {"$push": {"errors": {"attempt": attempt, "error": message[:500],
                                                   "at": datetime.now(UTC)}}}
    if is_final:
        update["$set"] = {"state": JobState.FAILED.value, "finished_at": datetime.now(UTC)}
    else:
        update["$set"] = {"state": JobState.QUEUED.value}
    await db[JOBS].update_one({"_id": job_id, "attempt": attempt}, update)


async def delete_attempt_files(db: AsyncDatabase, job_id: str, attempts: range) -> None:
    """Remove files (and orphan chunks of a crashed upload) of the given attempts."""
    ids = [attempt_file_id(job_id, attempt) for attempt in attempts]
    await db[f"{BUCKET}.files"].delete_many({"_id": {"$in": ids}})
    await db[f"{BUCKET}.chunks"].delete_many({"files_id": {"$in": ids}})


async def delete_expired_jobs(db: AsyncDatabase, now: datetime | None = None) -> int:
    """Delete jobs past `expires_at` with their files; returns how many."""
    now = now or datetime.now(UTC)
    removed = 0
    async for job in db[JOBS].find({"expires_at": {"$lt": now}}, {"attempt": 1}):
        await delete_attempt_files(db, job["_id"], range(1, job.get("attempt", 0) + 1))
        await delete_job(db, job["_id"])
        removed += 1
    return removed


def public_view(job: dict[str, Any]) -> dict[str, Any]:
    """What GET /exports/{id} shows."""
    view = {
        "job_id": job["_id"], "state": job["state"], "params": job["params"],
        "records_written": job["records_written"], "bytes_written": job["bytes_written"],
        "attempts": job["attempt"],
        "errors": [{**error, "at": _iso(error["at"])} for error in job.get("errors", [])],
    }
    for name in ("created_at", "started_at", "finished_at", "expires_at"):
        view[name] = _iso(job.get(name))
    if job["state"] == JobState.DONE.value:
        view["filename"] = job["filename"]
        view["download_url"] = f"/exports/{job['_id']}/download"
    return view


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")
