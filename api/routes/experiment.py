import logging
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from redis.exceptions import RedisError

from api.auth import AdminDep
from api.conditions import Condition
from api.deps import StateDep
from api.errors import ApiError
from api.experiments import Experiments
from api.openapi import ERROR_RESPONSES

logger = logging.getLogger(__name__)
router = APIRouter(tags=["experiment"])

_REDIS_ERRORS = (RedisError, OSError, TimeoutError)


class ConditionOut(BaseModel):
    """What the arm's queries run with: the settings, overridden by the arm."""

    model: str
    system_prompt_hash: str = Field(description="As stored on each query record")
    temperature: float | None
    sources_provider: str
    source_set: str | None
    history_turns: int


class ArmOut(BaseModel):
    name: str
    weight: float
    share: float = Field(description="weight / sum of weights: this arm's share of new participants")
    overrides: dict[str, Any] = Field(description="What the experiment file sets for this arm")
    condition: ConditionOut
    participants: int = Field(description="Participants recorded in this arm at their first /query")
    queries: int = Field(description="/query calls run under this arm (failed ones included)")


class RemovedArmOut(BaseModel):
    name: str
    participants: int = Field(description="Still recorded here; they move to a current arm at the next start")
    queries: int


class ExperimentOut(BaseModel):
    experiment: str
    description: str
    participants: int
    queries: int
    arms: list[ArmOut]
    removed_arms: list[RemovedArmOut] = Field(description="Arms with counts that are no longer in the file")


_RESPONSES = {
    **{code: ERROR_RESPONSES[code] for code in (401, 503)},
    403: ERROR_RESPONSES[401] | {"description": "ADMIN_API_KEY is not configured"},
    404: ERROR_RESPONSES[401] | {"description": "No experiment is configured (EXPERIMENT_FILE is empty)"},
}


@router.get("/experiment", responses=_RESPONSES)
async def experiment(state: StateDep, _: AdminDep) -> ExperimentOut:
    """The experiment's arms with their settings, and the participants and queries counted per arm."""
    experiments = state.experiments
    if experiments.spec is None:
        raise ApiError(404, "no experiment is configured: set EXPERIMENT_FILE to a YAML or JSON experiment file")
    try:
        counts = await experiments.counts()
    except _REDIS_ERRORS as exc:
        logger.warning("experiment counts unavailable", extra={"error": type(exc).__name__})
        raise ApiError(503, "experiment counts are unavailable: Redis does not answer",
                       headers={"Retry-After": str(state.settings.RETRY_AFTER_S)}) from None
    return _summary(experiments, counts.participants, counts.queries)


def _summary(experiments: Experiments, participants: dict[str, int], queries: dict[str, int]) -> ExperimentOut:
    spec = experiments.spec
    total_weight = sum(arm.weight for arm in spec.arms)
    conditions = experiments.conditions()
    arms = [ArmOut(name=arm.name, weight=arm.weight, share=arm.weight / total_weight, overrides=arm.overrides(),
                   condition=_condition_out(conditions[arm.name]),
                   participants=participants.get(arm.name, 0), queries=queries.get(arm.name, 0))
            for arm in spec.arms]
    removed = [RemovedArmOut(name=name, participants=participants.get(name, 0), queries=queries.get(name, 0))
               for name in sorted((participants.keys() | queries.keys()) - conditions.keys())]
    return ExperimentOut(experiment=spec.name, description=spec.description,
                         participants=sum(participants.values()), queries=sum(queries.values()),
                         arms=arms, removed_arms=removed)


def _condition_out(condition: Condition) -> ConditionOut:
    return ConditionOut(model=condition.model, system_prompt_hash=condition.system_prompt_hash,
                        temperature=condition.temperature, sources_provider=condition.sources_provider,
                        source_set=condition.source_set, history_turns=condition.history_turns)
