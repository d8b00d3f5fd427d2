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
    """Pydantic errors as `[{"field": "extra_data.a", "message": "..."}]`, without echoing input.

    A model-level check names its field in `ctx["field"]`; one message per field is enough.
    """
    result: dict[str, str] = {}
    for err in errors:
        field = (err.get("ctx") or {}).get("field") or ".".join(str(p) for p in err["loc"] if p != "body") or "body"
        result.setdefault(field, err["msg"])
    return [{"field": field, "message": message} for field, message in result.items()]


def invalid_fields(fields: list[dict[str, str]]) -> ApiError:
    """A 422 whose message names the first offending field; `fields` lists every one."""
    first = fields[0]
    more = f" (and {len(fields) - 1} more in 'fields')" if len(fields) > 1 else ""
    return ApiError(422, f"{first['field']}: {first['message']}{more}", fields=fields)


def error_response(status: int, message: str, headers: dict[str, str] | None = None, **details: Any) -> JSONResponse:
    return JSONResponse({"error": message, **details}, status_code=status, headers=headers)


def api_error_response(exc: ApiError) -> JSONResponse:
    return error_response(exc.status, exc.message, exc.headers, **exc.details)


async def _handle_api_error(_: Request, exc: ApiError) -> JSONResponse:
    return api_error_response(exc)


async def _handle_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    return await _handle_api_error(request, invalid_fields(field_errors(list(exc.errors()))))


STATUS_MESSAGES = {
    404: "no such endpoint",
    405: "method not allowed for this endpoint",
    413: "request body is too large",
}


async def _handle_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    message = STATUS_MESSAGES.get(exc.status_code, str(exc.detail))
    details: dict[str, Any] = {}
    # FastAPI's max_body_size raises this while the route reads the body; the limit is in the scope.
    if exc.status_code == 413 and (limit := request.scope.get("starlette.max_body_size")) is not None:
        message, details = f"request body is larger than {limit} bytes", {"limit_bytes": limit}
    return error_response(exc.status_code, message, getattr(exc, "headers", None), **details)


async def _handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Log the cause for operators; the client learns nothing about internals.
    logger.exception("unhandled error", extra={"path": request.url.path})
    return error_response(500, "internal server error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _handle_api_error)
    app.add_exception_handler(RequestValidationError, _handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, _handle_http_error)
    app.add_exception_handler(Exception, _handle_unexpected)
