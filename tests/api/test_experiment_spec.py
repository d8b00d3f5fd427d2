"""EXPERIMENT_FILE is validated at startup; every error names the file and the offending field."""

from pathlib import Path

import pytest

from api.experiment_spec import ExperimentFileError, load_experiment
from api.main import create_app
from scripts.devstack import Service
from shared.settings import Settings
from tests.conftest import make_settings
from tests.experiment_helpers import THREE_ARMS, write_experiment


def _load(path: Path, **overrides: object) -> object:
    return load_experiment(Settings(_env_file=None, EXPERIMENT_FILE=str(path), **overrides))


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".json"])
def test_yaml_and_json_files_load_the_same_experiment(tmp_path: Path, suffix: str) -> None:
    spec = _load(write_experiment(tmp_path, "exp-1", THREE_ARMS, suffix=suffix))

    assert spec.name == "exp-1"
    assert [(arm.name, arm.weight) for arm in spec.arms] == [("control", 5), ("cited", 3), ("solo", 2)]
    assert spec.arms[1].overrides() == {"temperature": 0.2, "system_prompt": "Cite every source as [n]."}
    assert spec.arms[0].overrides() == {}


def test_no_file_means_no_experiment() -> None:
    assert load_experiment(Settings(_env_file=None)) is None


@pytest.mark.parametrize(("arms", "message"), [
    ([], "arms: List should have at least 1 item"),
    ([{"name": "a", "weight": 0}], "arms.0.weight: Input should be greater than 0"),
    ([{"name": "a", "weight": -1}], "arms.0.weight: Input should be greater than 0"),
    ([{"name": "a"}], "arms.0.weight: Field required"),
    ([{"name": "a", "weight": 1}, {"name": "a", "weight": 2}], "arm names must be unique: 'a' appears more than once"),
    ([{"name": "a", "weight": 1, "temprature": 0.5}], "arms.0.temprature: Extra inputs are not permitted"),
    ([{"name": "a", "weight": 1, "temperature": 3}], "arms.0.temperature: Input should be less than or equal to 2"),
    ([{"name": "a", "weight": 1, "history_turns": -1}], "arms.0.history_turns: Input should be greater than or equal"),
    ([{"name": "a b", "weight": 1}], "arms.0.name: String should match pattern"),
])
def test_invalid_arms_are_refused_naming_the_file_and_field(tmp_path: Path, arms: list, message: str) -> None:
    path = write_experiment(tmp_path, "exp-1", arms)

    with pytest.raises(ExperimentFileError) as error:
        _load(path)

    assert str(error.value).startswith(f"EXPERIMENT_FILE {path} is invalid: ")
    assert message in str(error.value)


def test_missing_name_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "experiment.json"
    path.write_text('{"arms": [{"name": "a", "weight": 1}]}')

    with pytest.raises(ExperimentFileError, match="name: Field required"):
        _load(path)


@pytest.mark.parametrize(("filename", "text", "message"), [
    ("experiment.yaml", "name: [unclosed", "is not valid YAML"),
    ("experiment.json", '{"name": ', "is not valid JSON"),
    ("experiment.toml", 'name = "x"', "the name must end in .yaml, .yml or .json"),
    ("experiment.yaml", "just a string", "top level: Input should be a valid dictionary"),
])
def test_unreadable_files_are_refused(tmp_path: Path, filename: str, text: str, message: str) -> None:
    path = tmp_path / filename
    path.write_text(text)

    with pytest.raises(ExperimentFileError, match=message):
        _load(path)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ExperimentFileError, match=f"EXPERIMENT_FILE {tmp_path / 'nope.yaml'} cannot be read"):
        _load(tmp_path / "nope.yaml")


def test_a_source_set_needs_the_static_provider(tmp_path: Path) -> None:
    path = write_experiment(tmp_path, "exp-1", [{"name": "a", "weight": 1, "source_set": "curated"}])

    with pytest.raises(ExperimentFileError, match="source_set needs sources_provider 'static'"):
        _load(path)
    assert _load(path, SOURCES_PROVIDER="static").arms[0].source_set == "curated"


def test_the_api_refuses_to_start_on_an_invalid_file(
    tmp_path: Path, redis_server: Service, mongo_server: Service,
) -> None:
    path = write_experiment(tmp_path, "exp-1", [{"name": "a", "weight": 0}])

    with pytest.raises(ExperimentFileError, match=str(path)):
        create_app(make_settings(redis_server, mongo_server, EXPERIMENT_FILE=str(path)))


def test_the_example_file_is_valid(repo_root: Path) -> None:
    spec = _load(repo_root / "examples" / "experiment.yaml")

    assert [arm.name for arm in spec.arms] == ["control", "cited", "no-history"]
