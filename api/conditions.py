"""The condition one participant's /query runs under: the settings, overridden by their experiment arm."""

import hashlib
from dataclasses import dataclass, replace
from typing import Any

from shared.settings import Settings


@dataclass(frozen=True)
class Condition:
    model: str
    system_prompt: str
    temperature: float | None
    sources_provider: str
    source_set: str | None  # a named set in SOURCES_FILE, for the static provider
    history_turns: int
    experiment: str | None = None
    arm: str | None = None

    @property
    def system_prompt_hash(self) -> str:
        """Stored on each query record: which prompt was used, without storing it thousands of times."""
        return hashlib.sha256(self.system_prompt.encode()).hexdigest()[:16]


def default_condition(settings: Settings) -> Condition:
    return Condition(
        model=settings.LITELLM_MODEL,
        system_prompt=settings.LLM_SYSTEM_PROMPT,
        temperature=settings.LLM_TEMPERATURE,
        sources_provider=settings.SOURCES_PROVIDER,
        source_set=None,
        history_turns=settings.SESSION_HISTORY_TURNS,
    )


def arm_condition(base: Condition, experiment: str, arm: str, overrides: dict[str, Any]) -> Condition:
    """The default condition with what the arm sets (`ArmSpec.overrides()`), labelled with the arm."""
    return replace(base, **overrides, experiment=experiment, arm=arm)
