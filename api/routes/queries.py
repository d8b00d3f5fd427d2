import logging

from fastapi import APIRouter, Request

from api.auth import IngestKeyDep
from api.body import read_json_body
from api.build import build_query_record, validate_body
from api.deps import StateDep
from api.errors import ApiError
from api.ingest import queue_records
from api.openapi import QUERY_RESPONSES, json_body
from api.prompt import build_messages
from api.schemas import QueryIn, QueryOut, SourceOut
from api.sources import extract_sources
from shared.records import QueryRecord, Source, new_record_id, utc_now_ms

logger = logging.getLogger(__name__)
router = APIRouter(tags=["llm"])


@router.post(
    "/query",
    openapi_extra=json_body(QueryIn),
    responses=QUERY_RESPONSES,
)
async def query(request: Request, state: StateDep, _: IngestKeyDep) -> QueryOut:
    """Answer through LiteLLM under the participant's condition, and log the exchange, failed attempts included."""
    received_at = utc_now_ms()
    body = await read_json_body(request, state.settings.MAX_EVENT_BYTES, state.limits)
    query_in = validate_body(QueryIn, body, state.limits)
    await state.rate_limiter.check(query_in.user_id, request.client.host if request.client else "unknown")
    query_id = new_record_id()
    condition = state.experiments.condition_for(query_in.user_id)
    sources: list[Source] = []
    history: list[dict] = []
    try:
        sources = await state.sources.find(condition, query_in.query)
        history = await state.history.load(query_in.session_id, condition.history_turns)
        messages = build_messages(condition.system_prompt, history, sources, query_in.query)
        answer = await state.llm.answer(messages, condition)
    except ApiError as failure:
        failed = build_query_record(query_in, query_id, received_at, failure, sources, condition, len(history) // 2)
        await _log_failed_query(state, failed)
        raise
    # Shown sources first; else the model's own citations; else the links in its answer.
    sources = sources or list(answer.citations) or _ranked(extract_sources(answer.text))
    record = build_query_record(query_in, query_id, received_at, answer, sources, condition, len(history) // 2)
    await queue_records(state, [record])
    await state.history.append(query_in.session_id, query_in.query, answer.text)
    logger.info("query answered", extra={"query_id": query_id, "latency_ms": answer.latency_ms, "arm": condition.arm})
    return QueryOut(
        response=answer.text,
        source=[SourceOut(**s.model_dump()) for s in sources],
        query_id=query_id,
        model_used=answer.model_used,
        experiment=condition.experiment,
        arm=condition.arm,
    )


def _ranked(sources: list[Source]) -> list[Source]:
    return [s.model_copy(update={"rank": rank}) for rank, s in enumerate(sources, start=1)]


async def _log_failed_query(state: StateDep, record: QueryRecord) -> None:
    # The LLM error is what the client must see; a storage error here is only logged.
    try:
        await queue_records(state, [record])
    except ApiError as exc:
        logger.error("failed query could not be logged", extra={"query_id": record.id, "error": exc.message})
