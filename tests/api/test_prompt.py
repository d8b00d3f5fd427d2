from api.prompt import CITE_INSTRUCTION, build_messages
from shared.records import Source

SOURCES = [
    Source(title="Redis streams", url="https://redis.io/streams", content="An append-only log.", rank=1),
    Source(title="arq\nqueues", url="https://arq.example/", content="", rank=2),
]
HISTORY = [{"role": "user", "content": "Earlier?"}, {"role": "assistant", "content": "Earlier answer."}]


def test_sources_are_numbered_by_rank_after_the_system_prompt() -> None:
    messages = build_messages("Be brief.", HISTORY, SOURCES, "How do streams work?")

    assert messages[0] == {
        "role": "system",
        "content": "Be brief.\n\n" + CITE_INSTRUCTION + "\n"
        "[1] Redis streams — https://redis.io/streams — An append-only log.\n"
        "[2] arq queues — https://arq.example/",
    }
    assert messages[1:] == [*HISTORY, {"role": "user", "content": "How do streams work?"}]


def test_the_instruction_asks_to_cite_by_number_and_recommend() -> None:
    content = build_messages("Be brief.", [], SOURCES, "q")[0]["content"]

    assert "cite them by number like [1]" in content
    assert "recommend" in content


def test_no_sources_no_context_block() -> None:
    messages = build_messages("Be brief.", HISTORY, [], "How do streams work?")

    assert messages == [{"role": "system", "content": "Be brief."}, *HISTORY,
                        {"role": "user", "content": "How do streams work?"}]


def test_numbers_are_the_ranks_the_participant_sees() -> None:
    reranked = [SOURCES[1].model_copy(update={"rank": 1}), SOURCES[0].model_copy(update={"rank": 2})]

    content = build_messages("", [], reranked, "q")[0]["content"]

    assert content.splitlines()[1:] == ["[1] arq queues — https://arq.example/",
                                        "[2] Redis streams — https://redis.io/streams — An append-only log."]


def test_an_empty_system_prompt_sends_no_empty_system_message() -> None:
    assert build_messages("  ", [], [], "q") == [{"role": "user", "content": "q"}]
    assert build_messages("", [], SOURCES, "q")[0]["content"].startswith(CITE_INSTRUCTION)
