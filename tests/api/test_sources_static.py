import json
from dataclasses import replace
from pathlib import Path

import pytest

from api.conditions import Condition
from api.sources import SourceFinder, SourcesConfigError
from shared.settings import Settings

BOOTS = [
    {"title": "Boots A", "url": "https://a.example/boots", "content": "Light and dry."},
    {"title": "Boots B", "url": "https://b.example/boots", "content": "Warm."},
]
GENERAL = [{"title": "Encyclopedia", "url": "https://wiki.example/", "content": ""}]
FILE = {
    "sets": {"boots": BOOTS, "general": GENERAL, "empty": []},
    "rules": [{"pattern": r"\bboots?\b", "set": "boots"}, {"pattern": "shoe|boot", "set": "general"}],
    "default": "general",
}
CONDITION = Condition(model="m", system_prompt="p", temperature=None, sources_provider="static", source_set=None,
                      history_turns=0)


def finder_for(tmp_path: Path, content: object, **overrides: object) -> SourceFinder:
    path = tmp_path / "sources.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    values: dict[str, object] = {"SOURCES_PROVIDER": "static", "SOURCES_FILE": str(path), **overrides}
    return SourceFinder(Settings(_env_file=None, **values))


def shown(sources: list) -> list[tuple[int, str]]:
    return [(s.rank, s.url) for s in sources]


async def test_the_first_matching_rule_picks_the_set_case_insensitively(tmp_path: Path) -> None:
    finder = finder_for(tmp_path, FILE)

    sources = await finder.find(CONDITION, "Which BOOTS for a wet hike?")

    assert [s.model_dump() for s in sources] == [{**BOOTS[0], "rank": 1}, {**BOOTS[1], "rank": 2}]
    assert shown(await finder.find(CONDITION, "bootlaces?")) == [(1, "https://wiki.example/")]


async def test_no_rule_matches_the_default_set_is_shown(tmp_path: Path) -> None:
    finder = finder_for(tmp_path, FILE)

    assert shown(await finder.find(CONDITION, "What is the weather?")) == [(1, "https://wiki.example/")]


async def test_without_a_default_an_unmatched_query_gets_no_sources(tmp_path: Path) -> None:
    finder = finder_for(tmp_path, {**FILE, "default": None})

    assert await finder.find(CONDITION, "What is the weather?") == []


async def test_the_arms_source_set_wins_over_the_patterns(tmp_path: Path) -> None:
    finder = finder_for(tmp_path, FILE)

    assert shown(await finder.find(replace(CONDITION, source_set="general"), "boots?")) == [(1, "https://wiki.example/")]
    assert await finder.find(replace(CONDITION, source_set="empty"), "boots?") == []


async def test_an_arm_naming_a_set_gets_it_whatever_provider_it_inherited(tmp_path: Path) -> None:
    finder = finder_for(tmp_path, FILE, SOURCES_PROVIDER="none")

    arm = replace(CONDITION, sources_provider="tavily", source_set="boots")

    assert shown(await finder.find(arm, "anything")) == [(1, BOOTS[0]["url"]), (2, BOOTS[1]["url"])]
    assert await finder.find(replace(CONDITION, sources_provider="none"), "boots") == []


async def test_callers_cannot_change_the_curated_set(tmp_path: Path) -> None:
    finder = finder_for(tmp_path, FILE)
    first = await finder.find(CONDITION, "boots")
    first[0].title = "changed"

    assert (await finder.find(CONDITION, "boots"))[0].title == "Boots A"


def test_the_example_file_is_valid(repo_root: Path) -> None:
    settings = Settings(_env_file=None, SOURCES_PROVIDER="static", SOURCES_FILE=str(repo_root / "examples/sources.json"))

    SourceFinder(settings).check_sets(["hiking", "redis", "general", "no_sources"])


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "is not a valid sources file: Invalid JSON"),
        ({"sets": {"a": [{"title": "t", "url": "ftp://x"}]}}, "sets.a.0.url: String should match pattern"),
        ({"sets": {"a": [{"title": "", "url": "https://x"}]}}, "sets.a.0.title: String should have at least 1"),
        ({"sets": {"a": [{"title": "t", "url": "https://x", "extra": 1}]}}, "sets.a.0.extra: Extra inputs"),
        ({"sets": {"a": []}, "rules": [{"pattern": "(", "set": "a"}]}, "pattern '(' is not a valid regular"),
        ({"sets": {"a": []}, "rules": [{"pattern": "x", "set": "b"}]}, "rules[0] names set 'b', which is not in"),
        ({"sets": {"a": []}, "default": "b"}, "default names set 'b', which is not in 'sets'"),
        ({"sets": {"a": [GENERAL[0], GENERAL[0]]}}, "set 'a' lists 'https://wiki.example/' twice"),
        ({"rules": []}, "sets: Field required"),
    ],
)
def test_a_bad_file_stops_startup_naming_the_file_and_the_problem(tmp_path: Path, content: object, problem: str) -> None:
    with pytest.raises(SourcesConfigError) as failure:
        finder_for(tmp_path, content)

    assert str(failure.value).startswith(f"SOURCES_FILE {tmp_path / 'sources.json'} ")
    assert problem in str(failure.value)


def test_a_missing_file_stops_startup(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, SOURCES_PROVIDER="static", SOURCES_FILE=str(tmp_path / "nope.json"))

    with pytest.raises(SourcesConfigError, match=r"nope.json cannot be read: No such file or directory"):
        SourceFinder(settings)


def test_a_set_longer_than_sources_max_stops_startup(tmp_path: Path) -> None:
    with pytest.raises(SourcesConfigError, match=r"set 'boots' has 2 sources, more than SOURCES_MAX=1"):
        finder_for(tmp_path, FILE, SOURCES_MAX=1)


def test_static_without_a_file_stops_startup() -> None:
    with pytest.raises(SourcesConfigError, match="SOURCES_PROVIDER: sources provider 'static' needs SOURCES_FILE"):
        SourceFinder(Settings(_env_file=None, SOURCES_PROVIDER="static"))


def test_an_unknown_set_named_by_an_arm_stops_startup(tmp_path: Path) -> None:
    finder = finder_for(tmp_path, FILE)
    arm = replace(CONDITION, source_set="bots", experiment="exp1", arm="treatment")

    with pytest.raises(SourcesConfigError) as failure:
        finder.check_conditions([CONDITION, arm])

    assert str(failure.value) == (
        f"arm 'treatment' of experiment 'exp1': source set 'bots' is not in SOURCES_FILE {tmp_path / 'sources.json'}"
        " (its sets: boots, empty, general)"
    )
    with pytest.raises(SourcesConfigError, match="source set 'bots' is not in SOURCES_FILE"):
        finder.check_sets(["boots", "bots"])


def test_a_set_named_without_a_sources_file_stops_startup() -> None:
    finder = SourceFinder(Settings(_env_file=None))

    with pytest.raises(SourcesConfigError, match="source set 'boots' needs SOURCES_FILE, which is not set"):
        finder.check_conditions([replace(CONDITION, sources_provider="none", source_set="boots", arm="a")])
