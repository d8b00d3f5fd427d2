"""The arq export job: write one export to GridFS, mark it done only once the whole file is written.

Each attempt writes its own file (`<job>-<attempt>`) and first deletes what earlier attempts left,
including chunks of an upload cut short by a crash. A transient MongoDB error retries the job;
a worker shutdown cancels it and arq runs it again.
"""

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

from arq import Retry, cron, func
from gridfs import AsyncGridFSBucket
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure, PyMongoError

from shared import export_jobs as jobs
from shared.export import ExportCounter, ExportPlan
from shared.export_csv import TooManyColumns
from shared.export_formats import export_chunks, export_filename, plan_columns
from shared.export_params import ExportParams
from shared.settings import Settings

logger = logging.getLogger(__name__)

MAX_TRIES = 3  # attempts that write; arq is given one more, so a last crash still gets marked failed
_PROGRESS_INTERVAL_S = 1.0


async def run_export_job(ctx: dict[str, Any], job_id: str) -> dict[str, Any]:
    settings: Settings = ctx["settings"]
    db: AsyncDatabase = ctx["db"]
    attempt: int = ctx.get("job_try", 1)
    if attempt > MAX_TRIES:  # the last attempt died without a word (e.g. the worker was killed)
        await _record_failure(db, job_id, attempt - 1, f"gave up after {MAX_TRIES} attempts", is_final=True)
        return {"job_id": job_id, "state": jobs.JobState.FAILED.value}
    job = await jobs.claim_job(db, job_id, attempt)
    if job is None:  # expired, or finished by an earlier attempt whose ack was lost
        logger.info("export job not runnable", extra={"job_id": job_id, "attempt": attempt})
        return {"job_id": job_id, "state": "skipped"}
    await jobs.delete_attempt_files(db, job_id, range(1, attempt + 1))
    try:
        async with asyncio.timeout(settings.EXPORT_JOB_TIMEOUT_S):
            return await _write_export(ctx, job_id, attempt, ExportParams.model_validate(job["params"]))
    except asyncio.CancelledError:
        await _record_failure(db, job_id, attempt, "interrupted (worker stopping); it will be retried", is_final=False)
        raise
    except ConnectionFailure as exc:  # MongoDB unreachable for a moment: try again later
        is_final = attempt >= MAX_TRIES
        await _record_failure(db, job_id, attempt, f"{type(exc).__name__}: {exc}", is_final=is_final)
        if is_final:
            raise
        raise Retry(defer=min(2**attempt, 60)) from exc
    except (TooManyColumns, TimeoutError) as exc:
        message = str(exc) or f"export took longer than EXPORT_JOB_TIMEOUT_S={settings.EXPORT_JOB_TIMEOUT_S:g}"
        await _record_failure(db, job_id, attempt, message, is_final=True)
        return {"job_id": job_id, "state": jobs.JobState.FAILED.value}
    except Exception as exc:  # a bug or a refused write: retrying would not help; arq logs the traceback
        await _record_failure(db, job_id, attempt, f"{type(exc).__name__}: {exc}", is_final=True)
        raise


async def _write_export(ctx: dict[str, Any], job_id: str, attempt: int, params: ExportParams) -> dict[str, Any]:
    settings: Settings = ctx["settings"]
    db: AsyncDatabase = ctx["db"]
    bucket: AsyncGridFSBucket = ctx.get("exports_bucket") or AsyncGridFSBucket(db, bucket_name=jobs.BUCKET)
    started = time.monotonic()
    plan = await plan_columns(db, ExportPlan(params), settings.EXPORT_MAX_COLUMNS)
    file_id, filename = jobs.attempt_file_id(job_id, attempt), export_filename(params.format, datetime.now(UTC))
    counter, size = ExportCounter(), 0
    upload = bucket.open_upload_stream_with_id(file_id, filename, metadata={
        "job_id": job_id, "attempt": attempt, "format": params.format.value})
    try:
        reported = time.monotonic()
        async for chunk in export_chunks(db, plan, counter):
            await upload.write(chunk)
            size += len(chunk)
            if time.monotonic() - reported >= _PROGRESS_INTERVAL_S:
                await jobs.record_progress(db, job_id, attempt, counter.records, size)
                reported = time.monotonic()
        await upload.close()
    except BaseException:
        await _abort_quietly(upload)
        raise
    if not await jobs.mark_done(db, job_id, attempt, file_id, filename, counter.records, size, settings.EXPORT_TTL_S):
        await jobs.delete_attempt_files(db, job_id, range(attempt, attempt + 1))
        logger.warning("export attempt superseded", extra={"job_id": job_id, "attempt": attempt})
        return {"job_id": job_id, "state": "superseded"}
    logger.info("export job done", extra={"job_id": job_id, "attempt": attempt, "count": counter.records,
                                          "bytes": size, "ms": round((time.monotonic() - started) * 1000)})
    return {"job_id": job_id, "state": jobs.JobState.DONE.value, "records": counter.records, "bytes": size}


async def delete_expired_exports(ctx: dict[str, Any]) -> int:
    """arq cron: drop jobs past EXPORT_TTL_S together with their files."""
    removed = await jobs.delete_expired_jobs(ctx["db"])
    if removed:
        logger.info("deleted expired exports", extra={"count": removed})
    return removed


async def _abort_quietly(upload: Any) -> None:
    try:
        await upload.abort()
    except Exception as exc:  # the next attempt deletes the chunks by id anyway
        logger.warning("could not abort export upload", extra={"error": type(exc).__name__})


async def _record_failure(db: AsyncDatabase, job_id: str, attempt: int, message: str, *, is_final: bool) -> None:
    """Note the error; a final failure also deletes every partial file. Best effort: MongoDB may be what failed."""
    logger.warning("export attempt failed", extra={"job_id": job_id, "attempt": attempt, "final": is_final,
                                                   "error": message[:200]})
    try:
        await jobs.note_error(db, job_id, attempt, message, is_final=is_final)
        if is_final:
            await jobs.delete_attempt_files(db, job_id, range(1, attempt + 1))
    except PyMongoError as exc:  # a retry or the expiry cron cleans up later
        logger.warning("could not record export failure", extra={"job_id": job_id, "error": type(exc).__name__})


# Registered by worker/main.py. arq is allowed one try more than MAX_TRIES; see run_export_job.
FUNCTIONS = [func(run_export_job, name=jobs.JOB_FUNCTION, max_tries=MAX_TRIES + 1)]
CRON_JOBS = [cron(delete_expired_exports, minute=set(range(0, 60, 10)), second=20, unique=True, timeout=300)]
