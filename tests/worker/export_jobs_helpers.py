"""Run export jobs with a real arq Worker in burst mode, and GridFS doubles for faults MongoDB won't produce on cue."""

import asyncio
import signal
from typing import Any

from arq.connections import RedisSettings, create_pool
from arq.worker import Worker
from gridfs import AsyncGridFSBucket
from pymongo import AsyncMongoClient
from pymongo.errors import AutoReconnect, OperationFailure

from shared.export_jobs import BUCKET
from shared.settings import Settings
from tests.helpers import names_for
from worker.jobs.export import FUNCTIONS

BURST_TIMEOUT_S = 60


async def run_export_jobs(settings: Settings, bucket_factory: Any = None) -> Worker:
    """Run every queued job (retries included) to completion, like `arq --burst`."""
    names = names_for(settings)
    pool = await create_pool(RedisSettings.from_dsn(settings.REDIS_URL), default_queue_name=names.arq_queue)
    mongo = AsyncMongoClient(settings.MONGODB_URI)
    db = mongo[settings.MONGO_DB]
    ctx: dict[str, Any] = {"settings": settings, "db": db}
    if bucket_factory is not None:
        ctx["exports_bucket"] = bucket_factory(AsyncGridFSBucket(db, bucket_name=BUCKET), db)
    worker = Worker(functions=FUNCTIONS, redis_pool=pool, queue_name=names.arq_queue, burst=True,
                    poll_delay=0.05, handle_signals=False, ctx=ctx)
    try:
        await asyncio.wait_for(worker.main(), timeout=BURST_TIMEOUT_S)
    finally:
        await pool.aclose()  # not worker.close(): arq calls redis-py's deprecated close() there
        await mongo.close()
    return worker


def run_jobs(settings: Settings, bucket_factory: Any = None) -> Worker:
    return asyncio.run(run_export_jobs(settings, bucket_factory))


class FlakyBucket:
    """The first upload dies after `fail_after` writes, as if the connection dropped, leaving a flushed
    chunk behind; abort() does nothing, as after a crash, so the retry must clean up.

    (PyMongo buffers up to 48 MB of chunks before inserting, so a small test file would not leave
    one on its own.)"""

    def __init__(self, bucket: AsyncGridFSBucket, db: Any, fail_after: int,
                 error: Exception | None = None, failures: int = 1) -> None:
        self.bucket, self.db, self.fail_after = bucket, db, fail_after
        self.error = error or AutoReconnect("connection reset mid-write (test)")
        self.failures_left = failures
        self.orphan_chunks: list[int] = []

    def open_upload_stream_with_id(self, file_id: str, filename: str, **kwargs: Any) -> Any:
        stream = self.bucket.open_upload_stream_with_id(file_id, filename, **kwargs)
        if self.failures_left == 0:
            return stream
        self.failures_left -= 1
        return _FailingUpload(self, stream, file_id)


class _FailingUpload:
    def __init__(self, owner: FlakyBucket, stream: Any, file_id: str) -> None:
        self.owner, self.stream, self.file_id, self.writes = owner, stream, file_id, 0

    async def write(self, data: bytes) -> None:
        if self.writes == self.owner.fail_after:
            chunks = self.owner.db[f"{BUCKET}.chunks"]
            await chunks.insert_one({"files_id": self.file_id, "n": 0, "data": b"partial"})
            self.owner.orphan_chunks.append(await chunks.count_documents({"files_id": self.file_id}))
            raise self.owner.error
        self.writes += 1
        await self.stream.write(data)

    async def close(self) -> None:
        await self.stream.close()

    async def abort(self) -> None:
        pass


def refusing(bucket: AsyncGridFSBucket, db: Any) -> FlakyBucket:
    """Every upload is refused with a non-transient error: the job fails for good at once."""
    return FlakyBucket(bucket, db, fail_after=0, error=OperationFailure("refused (test)", code=2), failures=99)


class StallingBucket:
    """Uploads stall after their first write until cancelled: a job caught mid-write by a shutdown."""

    def __init__(self, bucket: AsyncGridFSBucket) -> None:
        self.bucket = bucket
        self.writing = asyncio.Event()

    def open_upload_stream_with_id(self, file_id: str, filename: str, **kwargs: Any) -> Any:
        return _StallingUpload(self, self.bucket.open_upload_stream_with_id(file_id, filename, **kwargs))


class _StallingUpload:
    def __init__(self, owner: StallingBucket, stream: Any) -> None:
        self.owner, self.stream = owner, stream

    async def write(self, data: bytes) -> None:
        await self.stream.write(data)
        self.owner.writing.set()
        await asyncio.Event().wait()  # until the worker's shutdown cancels the job

    async def close(self) -> None:
        await self.stream.close()

    async def abort(self) -> None:
        await self.stream.abort()


async def interrupt_mid_write(settings: Settings) -> Worker:
    """Start a worker, let a job begin writing, then stop the worker as its shutdown does (arq cancels
    running jobs and leaves them queued)."""
    names = names_for(settings)
    pool = await create_pool(RedisSettings.from_dsn(settings.REDIS_URL), default_queue_name=names.arq_queue)
    mongo = AsyncMongoClient(settings.MONGODB_URI)
    stalling = StallingBucket(AsyncGridFSBucket(mongo[settings.MONGO_DB], bucket_name=BUCKET))
    worker = Worker(functions=FUNCTIONS, redis_pool=pool, queue_name=names.arq_queue, poll_delay=0.05,
                    handle_signals=False, ctx={"settings": settings, "db": mongo[settings.MONGO_DB],
                                               "exports_bucket": stalling})
    main = asyncio.create_task(worker.main())
    try:
        await asyncio.wait_for(stalling.writing.wait(), timeout=BURST_TIMEOUT_S)
        worker.handle_sig(signal.SIGTERM)
        await asyncio.wait_for(asyncio.gather(*worker.tasks.values(), return_exceptions=True), BURST_TIMEOUT_S)
    finally:
        main.cancel()
        await asyncio.gather(main, return_exceptions=True)
        await pool.aclose()
        await mongo.close()
    return worker
