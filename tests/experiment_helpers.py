"""Experiment files and participants for the experiment tests."""

import json
from pathlib import Path
from typing import Any

import yaml

THREE_ARMS = [
    {"name": "control", "weight": 5},
    {"name": "cited", "weight": 3, "temperature": 0.2, "system_prompt": "Cite every source as [n]."},
    {"name": "solo", "weight": 2, "history_turns": 0, "model": "openai/other-model"},
]


def write_experiment(directory: Path, name: str, arms: list[dict[str, Any]], *, suffix: str = ".yaml",
                     filename: str = "experiment") -> Path:
    path = directory / f"{filename}{suffix}"
    spec = {"name": name, "arms": arms}
    path.write_text(json.dumps(spec) if suffix == ".json" else yaml.safe_dump(spec))
    return path


def participants(count: int, tag: str = "p") -> list[str]:
    return [f"{tag}-{index:05d}" for index in range(count)]


def chi_square(observed: dict[str, int], weights: dict[str, float]) -> float:
    total, weight_sum = sum(observed.values()), sum(weights.values())
    expected = {arm: total * weight / weight_sum for arm, weight in weights.items()}
    return sum((observed.get(arm, 0) - expected[arm]) ** 2 / expected[arm] for arm in weights)
