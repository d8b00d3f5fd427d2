"""One error shape for every failure: `{"error": "<clear message>", ...}`."""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """Raised by routes and helpers; rendered by `_handle_api_error`."""

    def __init__(
        self, status: int, message: str, *, headers: dict[str, str] | None = None, **details: Any
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers
        self.details = details


def field_errors(errors: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Pydantic errors as `[{"field": "extra_data.a", "message": "..."}]`, without echoing input."""
    return [
        {"field": ".".join(str(part) for part in err["loc"] if part != "body") or "body", "message": err["msg"]}
        for err in errors
    ]


def error_response(status: int, message: str, headers: dict[str, str] | None = None, **details: Any) -> JSONResponse:
    return JSONResponse({"error": message, **details}, status_code=status, headers=headers)


async def _handle_api_error(_: Request, exc: ApiError) -> JSONResponse:
    return error_response(exc.status, exc.message, exc.headers, **exc.details)


async def _handle_validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    return error_response(422, "request validation failed", fields=field_errors(list(exc.errors())))


async def _handle_http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    messages = {
        404: "no such endpoint",
        405: "method not allowed for this endpoint",
        413: "request body is too large",
    }
    message = messages.get(exc.status_code, str(exc.detail))
    return error_response(exc.status_code, message, getattr(exc, "headers", None))


async def _handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Log the cause for operators; the client learns nothing about internals.
    logger.exception("unhandled error", extra={"path": request.url.path})
    return error_response(500, "internal server error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _handle_api_error)
    app.add_exception_handler(RequestValidationError, _handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, _handle_http_error)
    app.add_exception_handler(Exception, _handle_unexpected)
