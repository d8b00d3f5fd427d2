"""A local OpenAI-compatible server, so tests run LiteLLM's real HTTP path with no provider.

Behaviour is chosen per model name (`stub.behave("primary", status=500)`; LiteLLM sends "openai/primary"
as "primary"), or by the first path segment for the simple cases: /ok/v1, /fail/v1 (HTTP 500),
/slow/v1 (sleeps SLOW_S), /rate/v1 (HTTP 429 with Retry-After). A request with `"stream": true` is
answered as server-sent `chat.completion.chunk`s, one word per chunk, then a usage chunk when
`stream_options.include_usage` asks for it, then `[DONE]`.
"""

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWER = "Try [Redis streams](https://redis.io/docs/latest/develop/data-types/streams/) - append-only logs."
SLOW_S = 5.0
PROMPT_TOKENS = 11
COMPLETION_TOKENS = 7


@dataclass(frozen=True)
class Behaviour:
    status: int = 200  # e.g. 500 or 429: the error answered instead
    retry_after_s: int | None = None  # sent as Retry-After with an error status
    hang_s: float = 0.0  # before anything is sent: a timeout, streamed or not
    first_token_delay_s: float = 0.0  # streaming: after the headers, before the first token
    token_delay_s: float = 0.0  # streaming: between tokens
    cut_after_tokens: int | None = None  # streaming: drop the connection after this many tokens
    text: str = ANSWER

    @property
    def tokens(self) -> list[str]:
        return re.findall(r"\S+\s*", self.text)


PATH_MODES = {
    "ok": Behaviour(),
    "fail": Behaviour(status=500),
    "slow": Behaviour(hang_s=SLOW_S),
    "rate": Behaviour(status=429, retry_after_s=7),
}


class LlmStub:
    """The running server: its base URL, per-model behaviours, and what it saw."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._behaviours: dict[str, Behaviour] = {}
        self._calls: Counter[str] = Counter()
        self.requests: list[dict] = []  # every request body, in arrival order
        self.authorizations: list[str] = []  # every request's Authorization header ("" when absent), same order
        self.broken_streams = 0  # streams the client closed before the end (e.g. the API's client left)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def behave(self, model: str, **changes: object) -> None:
        """`model` as the stub receives it: without LiteLLM's provider prefix."""
        with self._lock:
            self._behaviours[model] = replace(Behaviour(), **changes)

    def calls(self, model: str) -> int:
        with self._lock:
            return self._calls[model]

    def reset(self) -> None:
        with self._lock:
            self._behaviours.clear()
            self._calls.clear()
            self.requests.clear()
            self.authorizations.clear()
            self.broken_streams = 0

    def _behaviour_for(self, path: str, request: dict, authorization: str) -> Behaviour:
        model = str(request.get("model", ""))
        with self._lock:
            self._calls[model] += 1
            self.requests.append(request)
            self.authorizations.append(authorization)
            if model in self._behaviours:
                return self._behaviours[model]
        return PATH_MODES.get(path.strip("/").split("/")[0], Behaviour())

    def _count_broken_stream(self) -> None:
        with self._lock:
            self.broken_streams += 1

    def start(self) -> "LlmStub":
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler_for(stub: LlmStub) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        owner = stub

    return Handler


class _Handler(BaseHTTPRequestHandler):
    owner: LlmStub

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("content-length", 0))
        request = json.loads(self.rfile.read(length) or b"{}")
        behaviour = self.owner._behaviour_for(self.path, request, self.headers.get("authorization", ""))
        time.sleep(behaviour.hang_s)
        if behaviour.status != 200:
            self._send_error(behaviour)
        elif request.get("stream"):
            self._stream(request, behaviour)
        else:
            self._send(200, _completion(request, behaviour))

    def _send_error(self, behaviour: Behaviour) -> None:
        kind = "rate_limit_exceeded" if behaviour.status == 429 else "server_error"
        headers = {"retry-after": str(behaviour.retry_after_s)} if behaviour.retry_after_s is not None else {}
        self._send(behaviour.status, {"error": {"message": f"stub {behaviour.status}", "type": kind}}, headers)

    def _send(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out first, as the slow mode intends

    def _stream(self, request: dict, behaviour: Behaviour) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            for data in _chunks(request, behaviour):
                self.wfile.write(f"data: {data}\n\n".encode())
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.owner._count_broken_stream()

    def log_message(self, *_: object) -> None:
        pass


def _chunks(request: dict, behaviour: Behaviour) -> Iterator[str]:
    """The stream's `data:` payloads, sleeping as the behaviour asks. Stops early to cut the stream."""
    model = request.get("model", "stub")
    yield _chunk(model, {"role": "assistant", "content": ""})
    time.sleep(behaviour.first_token_delay_s)
    for index, token in enumerate(behaviour.tokens):
        if behaviour.cut_after_tokens is not None and index >= behaviour.cut_after_tokens:
            return  # the connection closes without a finish_reason or [DONE]: a broken upstream
        if index:
            time.sleep(behaviour.token_delay_s)
        yield _chunk(model, {"content": token})
    yield _chunk(model, {}, finish_reason="stop")
    if (request.get("stream_options") or {}).get("include_usage"):
        yield json.dumps({**_envelope(model, "chat.completion.chunk"), "choices": [], "usage": _usage(behaviour)})
    yield "[DONE]"


def _chunk(model: str, delta: dict, finish_reason: str | None = None) -> str:
    choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
    return json.dumps({**_envelope(model, "chat.completion.chunk"), "choices": [choice]})


def _completion(request: dict, behaviour: Behaviour) -> dict:
    message = {"role": "assistant", "content": behaviour.text}
    return {
        **_envelope(request.get("model", "stub"), "chat.completion"),
        "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
        "usage": _usage(behaviour),
    }


def _envelope(model: str, kind: str) -> dict:
    return {"id": "chatcmpl-stub", "object": kind, "created": int(time.time()), "model": model}


def _usage(behaviour: Behaviour) -> dict:
    # Fixed counts for the default answer, so tests can compute the expected cost exactly.
    completion = COMPLETION_TOKENS if behaviour.text == ANSWER else len(behaviour.tokens)
    return {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": completion,
            "total_tokens": PROMPT_TOKENS + completion}


@contextmanager
def running_stub() -> Iterator[LlmStub]:
    stub = LlmStub().start()
    try:
        yield stub
    finally:
        stub.stop()


@contextmanager
def llm_stub() -> Iterator[str]:
    """Yields the base URL, e.g. http://127.0.0.1:PORT; append /ok/v1, /fail/v1, /slow/v1 or /rate/v1."""
    with running_stub() as stub:
        yield stub.url
