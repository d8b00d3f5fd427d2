"""EXPERIMENT_FILE: its schema and its loading, with errors that name the file and the offending field."""

import json
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shared.settings import Settings

# Names go into Redis keys and onto every record: keep them short and unambiguous.
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$",
                            description="1-64 characters: letters, digits, '_', '.', '-'")]
Text = Annotated[str, Field(min_length=1)]


class ArmSpec(BaseModel):
    """One arm: its share of new participants and what it overrides in the settings' default condition."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # a typo must not be silently ignored

    name: Name
    weight: float = Field(gt=0, description="Relative share of new participants (normalised over all arms)")
    model: Text | None = None
    system_prompt: Text | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    sources_provider: Text | None = None
    source_set: Text | None = None  # a named set in SOURCES_FILE, for the static provider
    history_turns: int | None = Field(default=None, ge=0)

    def overrides(self) -> dict[str, Any]:
        """The condition fields this arm sets, as written in the file."""
        return self.model_dump(exclude={"name", "weight"}, exclude_none=True)


class ExperimentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name = Field(description="Assignment is keyed by it: a new name reshuffles every participant")
    description: str = ""
    arms: list[ArmSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_arm_names(self) -> "ExperimentSpec":
        seen: set[str] = set()
        for arm in self.arms:
            if arm.name in seen:
                raise ValueError(f"arm names must be unique: {arm.name!r} appears more than once")
            seen.add(arm.name)
        return self


class ExperimentFileError(ValueError):
    """Raised at startup: the API refuses to run an experiment it cannot read exactly."""


def load_experiment(settings: Settings) -> ExperimentSpec | None:
    """The experiment of EXPERIMENT_FILE, or None when it is unset."""
    if not settings.EXPERIMENT_FILE:
        return None
    path = Path(settings.EXPERIMENT_FILE)
    spec = _validate(path, _read(path))
    _check_source_sets(path, spec, settings.SOURCES_PROVIDER)
    return spec


def _read(path: Path) -> Any:
    suffix = path.suffix.lower()
    if suffix not in (".yaml", ".yml", ".json"):
        raise ExperimentFileError(f"EXPERIMENT_FILE {path}: the name must end in .yaml, .yml or .json")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ExperimentFileError(f"EXPERIMENT_FILE {path} cannot be read: {exc}") from None
    try:
        return json.loads(text) if suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ExperimentFileError(f"EXPERIMENT_FILE {path} is not valid {suffix[1:].upper()}: {exc}") from None


def _validate(path: Path, data: Any) -> ExperimentSpec:
    try:
        return ExperimentSpec.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'top level'}: {err['msg']}"
                             for err in exc.errors())
        raise ExperimentFileError(f"EXPERIMENT_FILE {path} is invalid: {problems}") from None


def _check_source_sets(path: Path, spec: ExperimentSpec, default_provider: str) -> None:
    for arm in spec.arms:
        if arm.source_set and (arm.sources_provider or default_provider) != "static":
            raise ExperimentFileError(
                f"EXPERIMENT_FILE {path} is invalid: arms.{arm.name}: source_set needs sources_provider "
                f"'static' (set it on the arm or as SOURCES_PROVIDER)")
