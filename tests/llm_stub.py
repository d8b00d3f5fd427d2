"""A local OpenAI-compatible server, so tests run LiteLLM's real HTTP path with no provider.

The first path segment picks the behaviour: /ok/v1, /fail/v1 (HTTP 500) or /slow/v1 (sleeps).
"""

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWER = "Try [Redis streams](https://redis.io/docs/latest/develop/data-types/streams/) - append-only logs."
SLOW_S = 5.0


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("content-length", 0))
        request = json.loads(self.rfile.read(length) or b"{}")
        mode = self.path.strip("/").split("/")[0]
        if mode == "fail":
            self._send(500, {"error": {"message": "stub failure", "type": "server_error"}})
            return
        if mode == "slow":
            time.sleep(SLOW_S)
        self._send(200, {
            "id": "chatcmpl-stub", "object": "chat.completion", "created": int(time.time()),
            "model": request.get("model", "stub"),
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": ANSWER}}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
        })

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out first, as the slow mode intends

    def log_message(self, *_: object) -> None:
        pass


@contextmanager
def llm_stub() -> Iterator[str]:
    """Yields the base URL, e.g. http://127.0.0.1:PORT; append /ok/v1, /fail/v1 or /slow/v1."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
