"""Serves the ingest routes without FastAPI's router: the same endpoint functions, minus ~100 µs a request.

Profiled under `make bench` (py-spy): routing, `request_response`, dependency solving and the
exception middleware cost FastAPI more per request than an empty route's whole answer in plain
Starlette, and more than `/log_event` spends on validation and the XADD together. This middleware
sits innermost among ours (CORS, origin check and the app-wide body limit still run first) and
calls the routes' endpoint functions directly. The routes stay registered: they document the
endpoints in OpenAPI and serve them if this middleware is not installed.
"""

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

Endpoint = Callable[[Request], Awaitable[Response]]
Handler = Callable[[Request, Any], Awaitable[Response]]


class FastPathMiddleware:
    def __init__(self, app: ASGIApp, routes: Mapping[str, Endpoint], handlers: Mapping[Any, Handler]) -> None:
        self.app = app
        self.routes = routes  # POST path -> endpoint
        self.handlers = handlers  # the app's exception handlers, so errors look exactly the same

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self.routes.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await endpoint(request)
        except Exception as exc:  # handled like ExceptionMiddleware would; a 500 goes on to ServerErrorMiddleware
            handler = self._handler_for(exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)

    def _handler_for(self, exc: Exception) -> Handler | None:
        for cls in type(exc).__mro__:
            if cls is Exception:
                return None
            if cls in self.handlers:
                return self.handlers[cls]
        return None
