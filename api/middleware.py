"""The outermost layer, as plain ASGI (no per-request task, no body buffering on the happy path).

Every response carries a request id, requests from foreign origins are refused, and every error
leaves as `{"error": ...}` JSON, even the plain-text ones Starlette's own middleware sends (the
413 of `max_body_size`, CORS refusals). An unexpected error becomes its 500 here, not in
Starlette's ServerErrorMiddleware (outside every middleware), so the answer and the log line both
carry the request id.
"""

import logging
import re
from http import HTTPStatus

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import STATUS_MESSAGES, error_response
from shared.logging import request_id_var
from shared.records import new_record_id

# A client-chosen id is echoed in a header and written to logs: nothing that could split either.
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_BODY_LIMIT_SCOPE_KEY = "starlette.max_body_size"

logger = logging.getLogger(__name__)


class RequestContextMiddleware:
    """CORS alone does not stop a simple (text/plain) POST from another site; the 403 here does."""

    def __init__(self, app: ASGIApp, allowed_origins: frozenset[str]) -> None:
        self.app = app
        # "*" allows every origin; an empty set means no origin check (CORS_ORIGINS unset).
        self.allowed_origins = frozenset() if "*" in allowed_origins else allowed_origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given_id, origin = _request_id_and_origin(scope["headers"])
        request_id = _request_id(given_id)
        token = request_id_var.set(request_id)
        try:
            sender = _ResponseSender(scope, send, request_id)
            if self.allowed_origins and origin is not None and origin not in self.allowed_origins:
                # Preflights too: a refused preflight gets the same JSON answer as the request would.
                await error_response(403, f"origin {origin[:200]!r} is not allowed")(scope, receive, sender)
                return
            await self.app(scope, receive, sender)
        except Exception:
            logger.exception("unhandled error", extra={"path": scope.get("path", "")})
            if sender.started:  # mid-response: closing the connection is all that is left
                raise
            # The client learns nothing about internals; operators have the line above.
            await error_response(500, "internal server error")(scope, receive, sender)
        finally:
            request_id_var.reset(token)


def _request_id_and_origin(headers: list[tuple[bytes, bytes]]) -> tuple[str | None, str | None]:
    """The first X-Request-Id and Origin, in one pass (a `Headers` object costs more on every request)."""
    request_id = origin = None
    for name, value in headers:
        if name == b"x-request-id" and request_id is None:
            request_id = value.decode("latin-1")
        elif name == b"origin" and origin is None:
            origin = value.decode("latin-1")
    return request_id, origin


def _request_id(given: str | None) -> str:
    # 32 random hex digits, as uuid4().hex gives, at a third of the cost.
    return given if given and _SAFE_REQUEST_ID.fullmatch(given) else new_record_id()


class _ResponseSender:
    """Adds the request id; holds back a non-JSON error response and sends it as JSON instead."""

    __slots__ = ("scope", "send", "request_id", "held", "parts", "started")

    def __init__(self, scope: Scope, send: Send, request_id: str) -> None:
        self.scope = scope
        self.send = send
        self.request_id = request_id
        self.held: Message | None = None
        self.parts: list[bytes] = []
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            headers = [*message.get("headers", ()), (b"x-request-id", self.request_id.encode())]
            message["headers"] = headers
            if message["status"] >= 400 and not _is_json(headers):
                self.held = message
                return
        elif self.held is not None and message["type"] == "http.response.body":
            self.parts.append(message.get("body", b""))
            if not message.get("more_body", False):
                await self._send_as_json(self.held, b"".join(self.parts))
            return
        await self.send(message)

    async def _send_as_json(self, start: Message, original: bytes) -> None:
        status = start["status"]
        body = orjson.dumps({"error": self._message(status, original), **self._details(status)})
        kept = [(k, v) for k, v in start["headers"] if k.lower() not in (b"content-type", b"content-length")]
        headers = [*kept, (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await self.send({**start, "headers": headers})
        await self.send({"type": "http.response.body", "body": body})

    def _details(self, status: int) -> dict[str, int]:
        limit = self.scope.get(_BODY_LIMIT_SCOPE_KEY)
        return {"limit_bytes": limit} if status == 413 and limit is not None else {}

    def _message(self, status: int, original: bytes) -> str:
        if status == 413 and (limit := self.scope.get(_BODY_LIMIT_SCOPE_KEY)) is not None:
            return f"request body is larger than {limit} bytes"
        if status in STATUS_MESSAGES:
            return STATUS_MESSAGES[status]
        text = original.decode("utf-8", "replace").strip()
        # Starlette's own messages ("Disallowed CORS origin") are short and plain; anything else is replaced.
        if 0 < len(text) <= 100 and text.isprintable():
            return text
        try:
            return HTTPStatus(status).phrase
        except ValueError:
            return "request failed"


def _is_json(headers: list[tuple[bytes, bytes]]) -> bool:
    for key, value in headers:
        if key.lower() == b"content-type":
            return value.startswith(b"application/json")
    return False
