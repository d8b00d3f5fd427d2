"""LLM_MODEL_LIST: the Router's deployments from a file in LiteLLM's own Router/proxy config format.

```yaml
model_list:
  - model_name: primary                 # the name LITELLM_MODEL, LLM_FALLBACKS and arms use
    litellm_params:                     # anything litellm.completion takes: model, api_base, api_key, mock_response...
      model: openai/gpt-4o-mini
      api_key: os.environ/OPENAI_API_KEY
```

Only the shape is checked here; LiteLLM's Router checks the parameters and resolves `os.environ/VAR`
itself (its `get_secret`) when it is built. What LiteLLM does not do is refuse a variable that is unset
(the key silently becomes None, and every call fails later with a 401), so that is checked here.
"""

import copy
import json
import logging
import os
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.settings import Settings

logger = logging.getLogger(__name__)

ENV_PREFIX = "os.environ/"  # LiteLLM's convention for a secret read from the environment
Text = Annotated[str, Field(min_length=1)]


class ModelListError(ValueError):
    """Raised at startup: the API refuses to run with deployments it cannot read exactly."""


class _LitellmParams(BaseModel):
    model_config = ConfigDict(extra="allow")  # every litellm.completion parameter; LiteLLM validates them
    model: Text


class _Deployment(BaseModel):
    model_config = ConfigDict(extra="allow")  # model_info, tpm, rpm, ... as LiteLLM reads them
    model_name: Text
    litellm_params: _LitellmParams


class _ModelListFile(BaseModel):
    model_config = ConfigDict(extra="allow")  # a proxy config's other sections are ignored, with a warning
    model_list: list[_Deployment] = Field(min_length=1)


def load_model_list(settings: Settings) -> list[dict[str, Any]] | None:
    """The deployments of LLM_MODEL_LIST as written (for `litellm.Router(model_list=...)`), or None when unset."""
    if not settings.LLM_MODEL_LIST:
        return None
    path = Path(settings.LLM_MODEL_LIST)
    data = _read(path)
    _validate(path, data)
    _check_environment(path, data["model_list"])
    ignored = sorted(str(key) for key in data if key != "model_list")
    if ignored:
        logger.warning("LLM_MODEL_LIST: only model_list is read; retries, fallbacks and timeout come from the settings",
                       extra={"file": str(path), "ignored": ignored})
    return copy.deepcopy(data["model_list"])


def check_models_listed(path: str, model_names: set[str], wanted: dict[str, str]) -> None:
    """`wanted`: model -> which setting names it. Each must be a model_name of the file."""
    missing = [f"'{model}' ({where})" for model, where in wanted.items() if model not in model_names]
    if missing:
        raise ModelListError(f"LLM_MODEL_LIST {path} has no model_name {', '.join(missing)}; "
                             f"its models are: {', '.join(sorted(model_names))}")


def _read(path: Path) -> Any:
    suffix = path.suffix.lower()
    if suffix not in (".yaml", ".yml", ".json"):
        raise ModelListError(f"LLM_MODEL_LIST {path}: the name must end in .yaml, .yml or .json")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelListError(f"LLM_MODEL_LIST {path} cannot be read: {exc}") from None
    try:
        return json.loads(text) if suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ModelListError(f"LLM_MODEL_LIST {path} is not valid {suffix[1:].upper()}: {exc}") from None


def _validate(path: Path, data: Any) -> None:
    try:
        _ModelListFile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'top level'}: {err['msg']}"
                             for err in exc.errors())
        raise ModelListError(f"LLM_MODEL_LIST {path} is invalid: {problems}") from None


def _check_environment(path: Path, deployments: list[dict[str, Any]]) -> None:
    for index, deployment in enumerate(deployments):
        for key, value in deployment["litellm_params"].items():
            variable = value.removeprefix(ENV_PREFIX) if isinstance(value, str) else value
            if variable is not value and not os.environ.get(variable):
                raise ModelListError(
                    f"LLM_MODEL_LIST {path} is invalid: model_list.{index}.litellm_params.{key} "
                    f"({deployment['model_name']}) reads {variable} from the environment, which is not set")
