"""One streamed answer: its text deltas as they arrive, and, at any moment, what has arrived as an LlmAnswer."""

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

# Importing LiteLLM would otherwise fetch its model price map from the internet.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
import litellm  # noqa: E402

from api.llm_answer import LlmAnswer, LlmFailure, cost_usd, ms_since  # noqa: E402
from api.sources import citations_from_stream  # noqa: E402

_MAX_CHUNKS = 100_000  # bounds the read loop; far beyond any answer's token count


class AnswerStream:
    """Reads LiteLLM's chunk stream under the call's deadline; `to_failure` maps an error onto the LlmFailure
    the client sees (429/502/504)."""

    def __init__(self, chunks: Any, messages: list[dict], model: str, model_used: str, started: float,
                 deadline: float, is_mock: bool, to_failure: Callable[[BaseException], LlmFailure],
                 citations_max: int, chunk_delay_s: float = 0.0) -> None:
        self.model_used = model_used  # as labelled for the record ("mock:..." in mock mode)
        self._model = model
        self.is_complete = False  # the provider finished the answer (as opposed to a cut or abandoned stream)
        self._chunks = chunks
        self._messages = messages
        self._started = started
        self._deadline = deadline
        self._is_mock = is_mock
        self._to_failure = to_failure
        self._citations_max = citations_max
        self._chunk_delay_s = chunk_delay_s  # a pause before each chunk after the first (mock answers only)
        self._received: list[Any] = []
        self._pending: list[str] = []  # deltas read ahead while waiting for the first token
        self._parts: list[str] = []
        self._ttft_ms: float | None = None
        self._latency_ms: float | None = None  # set when the stream ends, complete or broken
        self._usage: Any = None
        self._finish_reason: str | None = None

    @property
    def text(self) -> str:
        return "".join(self._parts)

    async def wait_first_token(self) -> None:
        """Reads until the first text delta (or the end), so errors before it can still be plain JSON errors."""
        while self._ttft_ms is None and not self.is_complete:
            if (delta := await self._read_delta()) is not None:
                self._pending.append(delta)

    async def deltas(self) -> AsyncIterator[str]:
        """The text deltas, the first one included; raises LlmFailure if the stream breaks or runs out of time."""
        while self._pending:
            yield self._pending.pop(0)
        while not self.is_complete:
            if (delta := await self._read_delta()) is not None:
                yield delta

    async def aclose(self) -> None:
        """Closes the upstream connection, so an abandoned answer stops being generated (and billed)."""
        close = getattr(self._chunks, "aclose", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()

    def answer(self) -> LlmAnswer:
        """What has arrived: the whole answer once complete, else the partial text (usage unknown: None)."""
        built = self._built_response() if self.is_complete else None
        return LlmAnswer(
            text=self.text,
            model_used=self.model_used,
            latency_ms=self._latency_ms if self._latency_ms is not None else ms_since(self._started),
            ttft_ms=self._ttft_ms,
            prompt_tokens=getattr(self._usage, "prompt_tokens", None),
            completion_tokens=getattr(self._usage, "completion_tokens", None),
            cost_usd=self._cost_usd(built),
            finish_reason=self._finish_reason,
            citations=tuple(citations_from_stream(built, self._received, self._citations_max)) if built is not None else (),
        )

    async def _read_delta(self) -> str | None:
        """One chunk; its text, or None for a chunk without text (role, finish_reason, usage)."""
        if len(self._received) >= _MAX_CHUNKS:
            raise self._to_failure(RuntimeError("the answer exceeded the chunk limit"))
        try:
            async with asyncio.timeout_at(self._deadline):
                if self._chunk_delay_s and self._received:
                    await asyncio.sleep(self._chunk_delay_s)
                chunk = await anext(self._chunks)
        except StopAsyncIteration:
            self.is_complete = True
            self._latency_ms = ms_since(self._started)
            return None
        except Exception as exc:  # a broken stream, a timeout, a provider error mid-answer
            self._latency_ms = ms_since(self._started)
            await self.aclose()
            raise self._to_failure(exc) from None
        return self._take(chunk)

    def _take(self, chunk: Any) -> str | None:
        self._received.append(chunk)
        self._usage = getattr(chunk, "usage", None) or self._usage
        choice = chunk.choices[0] if getattr(chunk, "choices", None) else None
        if choice is None:
            return None
        self._finish_reason = choice.finish_reason or self._finish_reason
        delta = getattr(choice.delta, "content", None)
        if not delta:
            return None
        if self._ttft_ms is None:
            self._ttft_ms = round((time.perf_counter() - self._started) * 1000, 2)
        self._parts.append(delta)
        return delta

    def _built_response(self) -> Any:
        """The chunks as one ModelResponse, for cost and citations (LiteLLM's own rebuilding)."""
        try:
            return litellm.stream_chunk_builder(self._received, messages=self._messages)
        except Exception:  # an odd chunk must not lose the answer; cost and citations are then unknown
            return None

    def _cost_usd(self, built: Any) -> float | None:
        if self._is_mock:
            return 0.0
        # Only what the provider reported: an abandoned stream has no usage, and an estimate would pass for it.
        return cost_usd(built, self._model) if built is not None and self._usage is not None else None
