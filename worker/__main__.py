"""`python -m worker`: run the worker, supervised; `python -m worker dead-letters ...`: the admin CLI."""

import asyncio
import contextlib
import logging
import signal
import sys

from arq.worker import Worker, create_worker

from shared.logging import configure_logging
from shared.settings import Settings
from shared.stream import StreamNames
from worker.main import WorkerSettings, arq_redis_settings, shutdown

logger = logging.getLogger("worker")

_RESTART_DELAY_S = 1.0


async def run_supervised(settings: Settings) -> None:
    """Run arq until SIGTERM/SIGINT; if its loop dies (e.g. Redis restarted), start a new one."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    names = StreamNames.for_prefix(settings.STREAM_PREFIX)
    while not stop.is_set():
        worker = create_worker(WorkerSettings, redis_settings=arq_redis_settings(settings),
                               queue_name=names.arq_queue, ctx={"settings": settings})
        run = asyncio.create_task(worker.async_run(), name="arq")
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({run, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if run.done() and not run.cancelled() and run.exception():
            logger.error("arq loop exited; restarting", extra={"error": repr(run.exception())[:300]})
        await _close(worker, run)
        if not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=_RESTART_DELAY_S)


async def _close(worker: Worker, run: asyncio.Task) -> None:
    run.cancel()
    with contextlib.suppress(BaseException):
        await run
    try:
        await worker.close()  # runs on_shutdown: the drain finishes and acks its batch
    except Exception as exc:  # Redis gone: arq cannot clean up its keys, but the drain must still stop
        logger.warning("arq close failed", extra={"error": type(exc).__name__})
    finally:
        await shutdown(worker.ctx)


def main(argv: list[str]) -> int:
    settings = Settings()
    configure_logging(settings.LOG_LEVEL, "worker")
    if argv[:1] == ["dead-letters"]:
        from worker.cli import run_dead_letters_cli

        return asyncio.run(run_dead_letters_cli(settings, argv[1:]))
    if argv[:1] == ["export"]:
        from worker.export_cli import run_export_cli

        return asyncio.run(run_export_cli(settings, argv[1:]))
    asyncio.run(run_supervised(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
