"""Serves POST /log_event and /log_events without FastAPI's router: the same endpoint functions, same answers.

py-spy under `make bench` (c=128): the router, the per-router body limit, `request_response`,
dependency solving and the exception middleware were ~28% of the API's CPU, twice what our own
code took. This middleware sits innermost among ours (request id, origin check and CORS run first)
and calls the routes' endpoint functions directly, rendering an ApiError with the app's own handler.
What the router would have added, it adds: the router's body limit, as the same 413. Anything else
(another method or path, a root_path, a declared length over the router's limit) goes on to FastAPI.
"""

from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.body import too_large
from api.errors import ApiError, api_error_response

Endpoint = Callable[[Request], Awaitable[Response]]


class IngestFastPath:
    def __init__(self, app: ASGIApp, endpoints: Mapping[str, Endpoint], max_body_bytes: int) -> None:
        self.app = app
        self.endpoints = endpoints  # POST path -> the route's endpoint function
        self.max_body_bytes = max_body_bytes  # the routers' max_body_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self._endpoint_for(scope)
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, _CappedReceive(receive, self.max_body_bytes))
        try:
            response = await endpoint(request)
        except ApiError as exc:
            response = api_error_response(exc)
        # Anything else goes on to ServerErrorMiddleware, as it would from the route: a 500 revealing nothing.
        await response(scope, receive, send)

    def _endpoint_for(self, scope: Scope) -> Endpoint | None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
            return None
        endpoint = self.endpoints.get(scope["path"])
        # The router's limiter answers 413 to an oversized declared length whatever the route says; let it.
        if endpoint is None or not _declared_length_within(scope, self.max_body_bytes):
            return None
        return endpoint


def _declared_length_within(scope: Scope, max_bytes: int) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return value.isdigit() and int(value) <= max_bytes
    return True  # chunked: counted while read, by _CappedReceive


class _CappedReceive:
    """The router's body limit (`max_body_size`), raising the same 413 once the bytes read pass it."""

    __slots__ = ("receive", "max_bytes", "size")

    def __init__(self, receive: Receive, max_bytes: int) -> None:
        self.receive = receive
        self.max_bytes = max_bytes
        self.size = 0

    async def __call__(self) -> Message:
        message = await self.receive()
        if message["type"] == "http.request":
            self.size += len(message.get("body", b""))
            if self.size > self.max_bytes:
                raise too_large(self.max_bytes)
        return message
