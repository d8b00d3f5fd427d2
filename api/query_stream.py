"""A /query answered as server-sent events (api/stream_events.py), and its one query record.

The record is written once: before `done` is sent, or else when the stream ends, however it ends.
A client that leaves mid-answer gets its partial answer stored with `"aborted": true`; an answer
that breaks or times out mid-way is stored with its partial text and `error`.
"""

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from api.build import build_query_record
from api.conditions import Condition
from api.deps import AppState
from api.errors import ApiError
from api.ingest import queue_records
from api.llm import LlmFailure
from api.llm_stream import AnswerStream
from api.schemas import QueryIn, SourceOut
from api.sources import extract_sources
from api.sse import EventStreamResponse, sse_event
from api.stream_events import StreamDelta, StreamDone, StreamError, StreamStart
from shared.records import Source

logger = logging.getLogger(__name__)


def ranked(sources: list[Source]) -> list[Source]:
    return [s.model_copy(update={"rank": rank}) for rank, s in enumerate(sources, start=1)]


def shown_sources(fetched: list[Source], citations: tuple[Source, ...], text: str, limit: int) -> list[Source]:
    """Fetched sources first; else the model's own citations; else the links in its answer."""
    return fetched or list(citations) or ranked(extract_sources(text, limit))


class QueryStream:
    def __init__(self, state: AppState, query: QueryIn, query_id: str, received_at: datetime,
                 condition: Condition, sources: list[Source], history_turns: int, stream: AnswerStream) -> None:
        self._state = state
        self._query = query
        self._query_id = query_id
        self._received_at = received_at
        self._condition = condition
        self._sources = sources
        self._history_turns = history_turns
        self._stream = stream
        self._failure: LlmFailure | None = None
        self._logging: asyncio.Task | None = None

    def response(self) -> EventStreamResponse:
        return EventStreamResponse(self._events(), self._end)

    async def _events(self) -> AsyncIterator[bytes]:
        yield _event("start", StreamStart(**self._identity(), source=_shown(self._sources)))
        try:
            async for text in self._stream.deltas():
                yield _event("delta", StreamDelta(text=text))
        except LlmFailure as failure:
            self._failure = failure
            await self._log_once()
            yield _event("error", StreamError(error=failure.message, status=failure.status, query_id=self._query_id))
            return
        answer = self._stream.answer()
        sources = await self._log_once()
        yield _event("done", StreamDone(
            **self._identity(), response=answer.text, source=_shown(sources), finish_reason=answer.finish_reason,
            latency_ms=answer.latency_ms, ttft_ms=answer.ttft_ms, prompt_tokens=answer.prompt_tokens,
            completion_tokens=answer.completion_tokens, cost_usd=answer.cost_usd,
        ))

    def _identity(self) -> dict[str, Any]:
        return {"query_id": self._query_id, "model_used": self._stream.model_used,
                "experiment": self._condition.experiment, "arm": self._condition.arm}

    async def _end(self) -> None:
        """The response is over, however it ended: stop the upstream answer, then log it if not yet logged."""
        await self._stream.aclose()
        await self._log_once()

    async def _log_once(self) -> list[Source]:
        # One task, shielded: a cancellation mid-write cannot lose the record or write it twice.
        if self._logging is None:
            self._logging = asyncio.ensure_future(self._write_record())
        return await asyncio.shield(self._logging)

    async def _write_record(self) -> list[Source]:
        answer = self._stream.answer()
        has_failed = self._failure is not None
        is_complete = self._stream.is_complete and not has_failed
        sources = shown_sources(self._sources, answer.citations, answer.text, self._state.settings.SOURCES_MAX)
        record = build_query_record(self._query, self._query_id, self._received_at, answer, sources,
                                    self._condition, self._history_turns)
        # Neither finished nor failed: the client left (or the server cancelled the request) mid-answer.
        update: dict[str, Any] = {"streamed": True, "aborted": not is_complete and not has_failed}
        if self._failure is not None:
            update["error"] = self._failure.message
        try:
            await queue_records(self._state, [record.model_copy(update=update)])
        except ApiError as exc:  # the answer is already out; all that is left is to say so in the log
            logger.error("streamed query could not be logged", extra={"query_id": self._query_id, "error": exc.message})
        if is_complete:
            await self._append_history(answer.text)
        logger.info("query streamed", extra={"query_id": self._query_id, "latency_ms": answer.latency_ms,
                                             "ttft_ms": answer.ttft_ms, "aborted": update["aborted"],
                                             "arm": self._condition.arm})
        return sources

    async def _append_history(self, answer_text: str) -> None:
        try:
            await self._state.history.append(self._query.user_id, self._query.session_id, self._query.query, answer_text)
        except Exception:  # the answer is already out: a lost turn of context must not break its stream
            logger.exception("session history not updated", extra={"query_id": self._query_id})


def _shown(sources: list[Source]) -> list[SourceOut]:
    return [SourceOut(**s.model_dump()) for s in sources]


def _event(name: str, data: BaseModel) -> bytes:
    return sse_event(name, data.model_dump())
