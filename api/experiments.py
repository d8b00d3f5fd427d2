"""Experiment arms: deterministic, sticky assignment of participants by a hash of user_id."""

from api.conditions import Condition, default_condition
from shared.settings import Settings


class Experiments:
    """Built once in the lifespan from EXPERIMENT_FILE; assignment never reads a database."""

    def __init__(self, settings: Settings) -> None:
        self._default = default_condition(settings)

    def condition_for(self, user_id: str) -> Condition:
        # SKELETON: arms from EXPERIMENT_FILE come next.
        return self._default

    def stamp(self, user_id: str) -> dict[str, str]:
        """`{"experiment", "arm"}` for the user's records, or {} when no experiment runs."""
        return {}
