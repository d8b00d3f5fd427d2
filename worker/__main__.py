"""`python -m worker`: run the worker, supervised; `python -m worker dead-letters ...`: the admin CLI."""

import asyncio
import contextlib
import logging
import signal
import sys
import time

from arq.worker import Worker, create_worker

from shared.logging import configure_logging
from shared.runtime import tune_gc
from shared.settings import Settings
from shared.stream import StreamNames
from worker.main import WorkerSettings, arq_redis_settings, shutdown

logger = logging.getLogger("worker")

_RESTART_DELAY_S = 1.0
_WATCH_INTERVAL_S = 1.0
_MIN_CLOSE_S = 1.0


async def run_supervised(settings: Settings) -> None:
    """Run arq until SIGTERM/SIGINT; if its loop or the drain dies (e.g. Redis restarted), start a new one."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    names = StreamNames.for_prefix(settings.STREAM_PREFIX)
    while not stop.is_set():
        worker = create_worker(WorkerSettings, redis_settings=arq_redis_settings(settings),
                               queue_name=names.arq_queue, ctx={"settings": settings})
        run = asyncio.create_task(worker.async_run(), name="arq")
        reason = await _wait_for_exit(worker, run, stop)
        if reason:
            logger.error("worker loop exited; restarting", extra={"error": reason[:300]})
        await _close(worker, run, settings.SHUTDOWN_GRACE_S)
        if not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=_RESTART_DELAY_S)


async def _wait_for_exit(worker: Worker, run: asyncio.Task, stop: asyncio.Event) -> str | None:
    """Until `stop`, or arq's loop or the drain task ends; returns why it ended, None for `stop`."""
    while not stop.is_set():
        drain = worker.ctx.get("drain_task")
        watched = {run} | ({drain} if drain else set())
        done, _ = await asyncio.wait(watched, timeout=_WATCH_INTERVAL_S, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            error = None if task.cancelled() else task.exception()
            return f"{task.get_name()}: {error!r}"
    return None


async def _close(worker: Worker, run: asyncio.Task, grace_s: float) -> None:
    """Within about SHUTDOWN_GRACE_S: the drain acks its batch, then arq cleans up what it can."""
    started = time.monotonic()
    # The drain first: it finishes and acks its batch even if Redis is gone and arq cannot clean up.
    await shutdown(worker.ctx)
    run.cancel()
    with contextlib.suppress(BaseException):
        await run
    try:
        # arq retries Redis forever (see arq_redis_settings), so bound its clean-up.
        await asyncio.wait_for(worker.close(), timeout=max(_MIN_CLOSE_S, grace_s - (time.monotonic() - started)))
    except Exception as exc:
        logger.warning("arq close failed", extra={"error": type(exc).__name__})


def main(argv: list[str]) -> int:
    settings = Settings()
    configure_logging(settings.LOG_LEVEL, "worker")
    if argv[:1] == ["dead-letters"]:
        from worker.cli import run_dead_letters_cli

        return asyncio.run(run_dead_letters_cli(settings, argv[1:]))
    if argv[:1] == ["export"]:
        from worker.export_cli import run_export_cli

        return asyncio.run(run_export_cli(settings, argv[1:]))
    tune_gc()
    asyncio.run(run_supervised(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
