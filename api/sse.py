"""Server-sent events: the wire format, and a response whose end hook always runs exactly once.

FastAPI's own `EventSourceResponse` needs a generator path operation, which cannot answer a plain
JSON error once it has started; /query must (a failure before the first token is a 429/502/504).
So the route builds the events itself, encoded with FastAPI's `format_sse_event`.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import orjson
from fastapi.sse import format_sse_event
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

logger = logging.getLogger(__name__)

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # no proxy buffering of the tokens

# The event loop holds only weak references to tasks: this keeps an end hook alive while it runs
# after its request task was cancelled (Python's documented idiom for fire-and-forget tasks).
_ending: set[asyncio.Task] = set()


def sse_event(event: str, data: dict[str, Any]) -> bytes:
    """`event: <name>` and one `data:` line of JSON (JSON never holds a raw newline)."""
    return format_sse_event(event=event, data_str=orjson.dumps(data).decode())


class EventStreamResponse(StreamingResponse):
    """Sends `events` as text/event-stream until they end or the client leaves, then awaits `on_end`.

    The client leaving is noticed while the events wait (e.g. on the LLM), not only at the next send:
    a disconnect cancels the sending. `on_end` then runs to completion, even if this request's task
    is itself cancelled (server shutdown, a middleware), so what it logs is never lost half-way.
    """

    media_type = "text/event-stream"

    def __init__(self, events: AsyncIterator[bytes], on_end: Callable[[], Awaitable[None]],
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(events, headers={**SSE_HEADERS, **(headers or {})})
        self._events = events
        self._on_end = on_end

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(self._send_all, send, task_group.cancel_scope)
                await _wait_for_disconnect(receive)
                task_group.cancel_scope.cancel()
        finally:
            await _run_to_completion(self._end())

    async def _send_all(self, send: Send, scope: anyio.CancelScope) -> None:
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            async for event in self._events:
                await send({"type": "http.response.body", "body": event, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:  # the client is gone (an ASGI 2.4 server raises on send)
            pass
        except Exception:  # the response has started: a 500 is no longer possible, so log it and end
            logger.exception("event stream failed")
        scope.cancel()  # stop waiting for a disconnect

    async def _end(self) -> None:
        # Close the events first: their own cleanup (closing the upstream LLM stream) runs before the hook.
        try:
            await self._events.aclose()  # type: ignore[attr-defined]
        except Exception:
            logger.exception("event stream cleanup failed")
        await self._on_end()


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass  # a request body the route already read; nothing else arrives


async def _run_to_completion(work: Awaitable[None]) -> None:
    """Awaits `work` in its own task: if the caller is cancelled, the work still finishes."""
    task = asyncio.ensure_future(work)
    _ending.add(task)
    task.add_done_callback(_ending.discard)
    await asyncio.shield(task)
