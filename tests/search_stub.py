"""A local HTTP server standing in for the providers of sources, so tests run LiteLLM's real HTTP path.

Search APIs (`litellm.asearch`; LiteLLM has no mock for search). Every provider's base URL can be moved
by its `<PROVIDER>_API_BASE` variable (or `api_base`). The first path segment picks the behaviour:
- `/ok/search`: Tavily's API (POST JSON) or SearXNG's (GET `?q=...&format=json`), told apart by method;
- `/fail/search`: HTTP 500; `/ratelimit/search`: HTTP 429; `/garbage/search`: a body that is not JSON;
- `/slow/search`: answers only when the stub stops (or after HANG_LIMIT_S), so the client's timeout fires first.

Web-search chat models (`litellm.acompletion` with `api_base`), answering with their citations:
- `/openai/v1/chat/completions`: `message.annotations` of type url_citation (OpenAI; Gemini and Perplexity
  reach the same shape inside LiteLLM), streamed as delta annotations when asked;
- `/perplexity/chat/completions`: Perplexity's top-level `citations` and `search_results`;
- `/anthropic/v1/messages`: Anthropic text blocks with `citations`, streamed as citations_delta when asked.

Every request is recorded, so tests assert what LiteLLM sent.
"""

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

HANG_LIMIT_S = 30.0  # bounds a slow request even if the stub is never stopped

RESULTS = [
    {"title": "Redis streams", "url": "https://redis.io/docs/latest/develop/data-types/streams/",
     "content": "An append-only log with consumer groups."},
    {"title": "arq", "url": "https://arq-docs.helpmanual.io/", "content": "Job queues with asyncio and Redis."},
    {"title": "Redis streams again", "url": "https://redis.io/docs/latest/develop/data-types/streams/",
     "content": "The same page, found twice."},
    {"title": "Not a web page", "url": "javascript:alert(1)", "content": "Never shown."},
    {"title": "MongoDB insertMany", "url": "https://www.mongodb.com/docs/manual/reference/method/db.collection.insertMany/",
     "content": "Inserts several documents."},
    {"title": "LiteLLM search", "url": "https://docs.litellm.ai/docs/search/", "content": "One API for search providers."},
]


@dataclass
class SearchRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    body: dict
    headers: dict[str, str]


@dataclass
class SearchStub:
    base_url: str  # http://127.0.0.1:PORT; append /ok, /fail, /slow, ...
    requests: list[SearchRequest] = field(default_factory=list)
    results: list[dict] = field(default_factory=lambda: list(RESULTS))
    released: threading.Event = field(default_factory=threading.Event)


def _handler_for(stub: SearchStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._answer({})

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("content-length", 0))
            self._answer(json.loads(self.rfile.read(length) or b"{}"))

        def _answer(self, body: dict) -> None:
            url = urlsplit(self.path)
            stub.requests.append(SearchRequest(self.command, url.path, parse_qs(url.query), body, dict(self.headers)))
            mode = url.path.strip("/").split("/")[0]
            if mode in _CHAT_MODELS:
                self._answer_chat(mode, body)
                return
            if mode == "slow":
                stub.released.wait(HANG_LIMIT_S)
            if mode == "fail":
                self._send(500, b'{"error": "stub failure"}')
            elif mode == "ratelimit":
                self._send(429, b'{"error": "rate limit exceeded"}', {"retry-after": "7"})
            elif mode == "garbage":
                self._send(200, b"<html>not json</html>")
            else:
                self._send(200, json.dumps(self._results(body)).encode())

        def _answer_chat(self, mode: str, body: dict) -> None:
            if not body.get("stream"):
                self._send(200, json.dumps(_CHAT_MODELS[mode](body)).encode())
                return
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.end_headers()
            events = _anthropic_events(body) if mode == "anthropic" else _openai_chunks(body)
            if mode == "perplexity":  # every chunk carries the top-level lists, none the annotations
                extras = {k: v for k, v in _perplexity_answer(body).items() if k in ("citations", "search_results")}
                events = [{**chunk, **extras} for chunk in events if "annotations" not in chunk["choices"][0]["delta"]]
            self.wfile.write(b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in events))
            if mode != "anthropic":
                self.wfile.write(b"data: [DONE]\n\n")
            self.close_connection = True

        def _results(self, body: dict) -> dict:
            # Tavily honours max_results; SearXNG returns a page of whatever it found.
            limit = body.get("max_results", len(stub.results))
            return {"query": body.get("query", ""), "results": stub.results[:limit], "request_id": "stub"}

        def _send(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
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

        def log_message(self, *_: object) -> None:
            pass

    return Handler


@contextmanager
def search_stub() -> Iterator[SearchStub]:
    stub = SearchStub(base_url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(stub))
    stub.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        stub.released.set()  # lets slow requests finish before the server closes
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- web-search chat models ---------------------------------------------------------------------------

CITED_TEXT = "Redis streams are append-only logs [1]; arq runs jobs on them [2]."
CITED = [RESULTS[0], RESULTS[1]]
_USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}


def _url_citation(result: dict, start: int, end: int) -> dict:
    return {"type": "url_citation",
            "url_citation": {"url": result["url"], "title": result["title"], "start_index": start, "end_index": end}}


def _annotations() -> list[dict]:
    # The first source is cited twice: normalised sources keep each URL once.
    return [_url_citation(CITED[0], 31, 34), _url_citation(CITED[1], 59, 62), _url_citation(CITED[0], 0, 13)]


def _openai_answer(body: dict) -> dict:
    message = {"role": "assistant", "content": CITED_TEXT, "annotations": _annotations()}
    return {"id": "chatcmpl-stub", "object": "chat.completion", "created": 1, "model": body.get("model", "stub"),
            "choices": [{"index": 0, "finish_reason": "stop", "message": message}], "usage": _USAGE}


def _openai_chunks(body: dict) -> list[dict]:
    def chunk(delta: dict, finish: str | None = None) -> dict:
        return {"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": 1, "model": body["model"],
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    half = len(CITED_TEXT) // 2
    return [chunk({"role": "assistant", "content": CITED_TEXT[:half]}), chunk({"content": CITED_TEXT[half:]}),
            chunk({"annotations": _annotations()}), chunk({}, "stop")]


def _perplexity_answer(body: dict) -> dict:
    answer = _openai_answer(body)
    del answer["choices"][0]["message"]["annotations"]
    # Perplexity lists every URL it used, cited in the text or not, and the search results behind them.
    answer["citations"] = [r["url"] for r in CITED] + [RESULTS[4]["url"]]
    answer["search_results"] = [{"title": r["title"], "url": r["url"], "snippet": r["content"]} for r in CITED]
    return answer


def _anthropic_citation(result: dict) -> dict:
    return {"type": "web_search_result_location", "url": result["url"], "title": result["title"],
            "encrypted_index": "stub", "cited_text": result["content"]}


def _anthropic_blocks() -> list[dict]:
    return [
        {"type": "text", "text": "Redis streams are append-only logs",
         "citations": [_anthropic_citation(CITED[0])]},
        {"type": "text", "text": "; arq runs jobs on them.",
         "citations": [_anthropic_citation(CITED[1]), _anthropic_citation(CITED[0])]},
    ]


def _anthropic_answer(body: dict) -> dict:
    return {"id": "msg_stub", "type": "message", "role": "assistant", "model": body.get("model", "stub"),
            "content": _anthropic_blocks(), "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": 11, "output_tokens": 7}}


def _anthropic_events(body: dict) -> list[dict]:
    message = {**_anthropic_answer(body), "content": [], "stop_reason": None}
    events: list[dict] = [{"type": "message_start", "message": message}]
    for index, block in enumerate(_anthropic_blocks()):
        events.append({"type": "content_block_start", "index": index,
                       "content_block": {"type": "text", "text": "", "citations": []}})
        for citation in block["citations"]:
            events.append({"type": "content_block_delta", "index": index,
                           "delta": {"type": "citations_delta", "citation": citation}})
        events.append({"type": "content_block_delta", "index": index,
                       "delta": {"type": "text_delta", "text": block["text"]}})
        events.append({"type": "content_block_stop", "index": index})
    events.append({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                   "usage": {"output_tokens": 7}})
    events.append({"type": "message_stop"})
    return events


_CHAT_MODELS = {"openai": _openai_answer, "perplexity": _perplexity_answer, "anthropic": _anthropic_answer}
