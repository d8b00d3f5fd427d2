"""Builds the messages sent to the model: system prompt with the numbered sources, earlier turns, the question."""

from shared.records import Source

CITE_INSTRUCTION = (
    "Sources for the question, numbered as the participant sees them. Base your answer on them where they are "
    "relevant, cite them by number like [1], and recommend the useful ones as markdown links [title](url). "
    "Do not invent other sources."
)


def build_messages(system_prompt: str, history: list[dict], sources: list[Source], question: str) -> list[dict]:
    """System message first (the prompt, then the sources block when there are sources), history, the question.

    One system message, not two: some providers accept a single system message only, at the start.
    """
    system = "\n\n".join(part for part in (system_prompt.strip(), sources_context(sources)) if part)
    messages = [{"role": "system", "content": system}] if system else []
    return [*messages, *history, {"role": "user", "content": question}]


def sources_context(sources: list[Source]) -> str:
    """`[rank] title — url — content`, one line each: [n] is the source the participant sees at rank n.

    The finder returns sources in rank order; a source without a rank is numbered by its position.
    """
    if not sources:
        return ""
    lines = [_source_line(source.rank or position, source) for position, source in enumerate(sources, start=1)]
    return "\n".join([CITE_INSTRUCTION, *lines])


def _source_line(number: int, source: Source) -> str:
    fields = (_one_line(source.title), source.url, _one_line(source.content))
    return f"[{number}] " + " — ".join(field for field in fields if field)


def _one_line(text: str) -> str:
    # A newline inside a title or snippet would break the one-source-per-line numbering.
    return " ".join(text.split())
