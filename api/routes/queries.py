import logging
import time
from typing import Any

from fastapi import APIRouter, Request, Response

from api.auth import IngestKeyDep
from api.body import read_json_body
from api.build import build_query_record, validate_body
from api.deps import AppState, StateDep
from api.disconnect import ClientLeft, unless_client_leaves
from api.errors import ApiError
from api.ingest import queue_records
from api.llm_answer import LlmAnswer, ms_since
from api.openapi import QUERY_RESPONSES, json_body
from api.prompt import build_messages
from api.query_stream import QueryStream, shown_sources
from api.schemas import QueryIn, QueryOut, SourceOut
from shared.records import QueryRecord, new_record_id, utc_now_ms

logger = logging.getLogger(__name__)
router = APIRouter(tags=["llm"])


@router.post(
    "/query",
    response_model=QueryOut,
    openapi_extra=json_body(QueryIn),
    responses=QUERY_RESPONSES,
)
async def query(request: Request, state: StateDep, _: IngestKeyDep) -> Any:
    """Answer through LiteLLM under the participant's condition, and log the exchange, failed attempts included.

    With `"stream": true` (or `Accept: text/event-stream`) the answer comes as server-sent events:
    `start`, `delta`..., then `done` (or `error`); see api/query_stream.py.
    """
    received_at = utc_now_ms()
    body = await read_json_body(request, state.settings.MAX_EVENT_BYTES, state.limits)
    query_in = validate_body(QueryIn, body, state.limits)
    await state.rate_limiter.check(query_in.user_id, request.client.host if request.client else "unknown")
    is_streamed = wants_stream(query_in, request.headers.get("accept", ""))
    _refuse_when_queue_full(state)  # before spending an LLM call whose record could not be queued
    query_id = new_record_id()
    condition = await state.experiments.assign(query_in.user_id)
    sources, history = [], []
    try:
        sources = await state.sources.find(condition, query_in.query)
        history = await state.history.load(query_in.user_id, query_in.session_id, condition.history_turns)
        messages = build_messages(condition.system_prompt, history, sources, query_in.query)
        call = state.llm.open_stream(messages, condition) if is_streamed else state.llm.answer(messages, condition)
        llm_started = time.perf_counter()
        try:
            outcome = await unless_client_leaves(request, call)
        except ClientLeft:
            # Nothing was shown: log the attempt as aborted, with the time the participant waited.
            left = LlmAnswer(text="", model_used=state.llm.label(condition.model), latency_ms=ms_since(llm_started),
                             prompt_tokens=None, completion_tokens=None, cost_usd=None)
            record = build_query_record(query_in, query_id, received_at, left, sources, condition, len(history) // 2)
            await _log_failed_query(state, record.model_copy(update={"streamed": is_streamed, "aborted": True}))
            logger.info("client left before the answer", extra={"query_id": query_id, "arm": condition.arm})
            return Response(status_code=499)  # never delivered: the client is gone
    except ApiError as failure:
        failed = build_query_record(query_in, query_id, received_at, failure, sources, condition, len(history) // 2)
        await _log_failed_query(state, failed.model_copy(update={"streamed": is_streamed}))
        raise
    if is_streamed:
        return QueryStream(state, query_in, query_id, received_at, condition, sources, len(history) // 2,
                           outcome).response()
    answer = outcome
    sources = shown_sources(sources, answer.citations, answer.text, state.settings.SOURCES_MAX)
    record = build_query_record(query_in, query_id, received_at, answer, sources, condition, len(history) // 2)
    await queue_records(state, [record.model_copy(update={"streamed": False, "aborted": False})])
    await state.history.append(query_in.user_id, query_in.session_id, query_in.query, answer.text)
    logger.info("query answered", extra={"query_id": query_id, "latency_ms": answer.latency_ms, "arm": condition.arm})
    return QueryOut(
        response=answer.text,
        source=[SourceOut(**s.model_dump()) for s in sources],
        query_id=query_id,
        model_used=answer.model_used,
        experiment=condition.experiment,
        arm=condition.arm,
    )


def wants_stream(query_in: QueryIn, accept: str) -> bool:
    """`stream` in the body wins when sent; otherwise `Accept: text/event-stream` asks for a stream."""
    if "stream" in query_in.model_fields_set:
        return query_in.stream
    return any(part.split(";")[0].strip().lower() == "text/event-stream" for part in accept.split(","))


def _refuse_when_queue_full(state: AppState) -> None:
    if state.backlog.is_full:
        raise ApiError(503, "the ingest queue is full; retry later",
                       headers={"Retry-After": str(state.settings.RETRY_AFTER_S)})


async def _log_failed_query(state: AppState, record: QueryRecord) -> None:
    # The LLM error is what the client must see; a storage error here is only logged.
    try:
        await queue_records(state, [record])
    except ApiError as exc:
        logger.error("failed query could not be logged", extra={"query_id": record.id, "error": exc.message})
