"""Builds the messages sent to the model: system prompt, earlier turns, numbered sources, the question."""

from shared.records import Source


def build_messages(system_prompt: str, history: list[dict], sources: list[Source], question: str) -> list[dict]:
    # SKELETON: numbered source context with an instruction to cite them comes next.
    return [{"role": "system", "content": system_prompt}, *history, {"role": "user", "content": question}]
