"""The event-stream response: events in order, the client leaving noticed while it waits, the end hook run once."""

import asyncio
from collections.abc import AsyncIterator

from api.sse import EventStreamResponse, sse_event

SCOPE = {"type": "http", "asgi": {"spec_version": "2.3"}}


class Recorder:
    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.ends = 0
        self.end_finished = asyncio.Event()
        self.first_body = asyncio.Event()
        self.closed = False

    async def send(self, message: dict) -> None:
        self.sent.append(message)
        if message["type"] == "http.response.body" and message["body"]:
            self.first_body.set()

    async def on_end(self, pause_s: float = 0) -> None:
        self.ends += 1
        await asyncio.sleep(pause_s)
        self.end_finished.set()

    def bodies(self) -> list[bytes]:
        return [m["body"] for m in self.sent if m["type"] == "http.response.body"]


async def never_disconnects() -> dict:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


async def test_events_are_sent_in_order_then_the_end_hook_runs_once() -> None:
    recorder = Recorder()

    async def events() -> AsyncIterator[bytes]:
        yield sse_event("start", {"n": 1})
        yield sse_event("done", {"n": 2})

    await EventStreamResponse(events(), recorder.on_end)(SCOPE, never_disconnects, recorder.send)

    assert recorder.sent[0]["status"] == 200
    headers = dict(recorder.sent[0]["headers"])
    assert headers[b"content-type"] == b"text/event-stream; charset=utf-8"
    assert b"content-length" not in headers  # a stream's length is unknown; 0 would end it at once
    assert recorder.bodies() == [b'event: start\ndata: {"n":1}\n\n', b'event: done\ndata: {"n":2}\n\n', b""]
    assert recorder.ends == 1


async def test_a_disconnect_is_noticed_while_the_events_wait() -> None:
    recorder = Recorder()

    async def events() -> AsyncIterator[bytes]:
        try:
            yield sse_event("start", {})
            await asyncio.Event().wait()  # an LLM that never sends its next token
            yield sse_event("never", {})
        finally:
            recorder.closed = True

    async def disconnect_after_first_event() -> dict:
        await recorder.first_body.wait()
        return {"type": "http.disconnect"}

    response = EventStreamResponse(events(), recorder.on_end)
    await asyncio.wait_for(response(SCOPE, disconnect_after_first_event, recorder.send), timeout=10)

    assert recorder.bodies() == [b"event: start\ndata: {}\n\n"]
    assert recorder.closed
    assert recorder.ends == 1


async def test_the_end_hook_finishes_even_when_the_request_task_is_cancelled() -> None:
    recorder = Recorder()

    async def events() -> AsyncIterator[bytes]:
        yield sse_event("start", {})
        await asyncio.Event().wait()
        yield sse_event("never", {})

    response = EventStreamResponse(events(), lambda: recorder.on_end(pause_s=0.2))
    task = asyncio.create_task(response(SCOPE, never_disconnects, recorder.send))
    await asyncio.wait_for(recorder.first_body.wait(), timeout=10)
    for _ in range(3):  # the server cancelling, again and again, while the hook runs
        task.cancel()
        await asyncio.sleep(0.01)

    await asyncio.wait_for(recorder.end_finished.wait(), timeout=10)
    assert task.cancelled()
    assert recorder.ends == 1
