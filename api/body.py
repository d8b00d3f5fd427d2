"""Reads a JSON request body the way browsers send it: JSON or text/plain (sendBeacon), maybe gzipped."""

import zlib
from typing import Any

from fastapi import Request

from api.errors import ApiError
from api.storable import Limits, ParsedJson, parse_body_json, storability_errors

_ACCEPTED_MEDIA_TYPES = frozenset({"application/json", "text/plain", ""})
# A gzip body may inflate to at most this many times its compressed size (decompression bombs).
_MAX_GZIP_RATIO = 100


async def read_json_body(request: Request, max_bytes: int, limits: Limits) -> Any:
    """The parsed, storable body, or an ApiError with a clear 4xx for anything unusable."""
    parsed = await read_json(request, max_bytes)
    if errors := storability_errors(parsed.value, limits, check_scalars=not parsed.has_storable_scalars):
        raise ApiError(422, "request contains values that cannot be stored", fields=errors)
    return parsed.value


async def read_json(request: Request, max_bytes: int) -> ParsedJson:
    """The parsed body, not yet checked for storability (for callers that check its parts on their own)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in _ACCEPTED_MEDIA_TYPES:
        raise ApiError(415, "Content-Type must be application/json or text/plain")
    raw = await request.body()
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding == "gzip":
        raw = _gunzip(raw, max_bytes)
    elif encoding not in ("identity", ""):
        raise ApiError(415, "Content-Encoding must be gzip or identity")
    if len(raw) > max_bytes:
        raise ApiError(413, f"request body is larger than {max_bytes} bytes")
    if not raw.strip():
        raise ApiError(400, "request body is empty; send a JSON object")
    try:
        return parse_body_json(raw)
    except (ValueError, RecursionError):
        raise ApiError(400, "request body is not valid JSON") from None


def _gunzip(raw: bytes, max_bytes: int) -> bytes:
    limit = min(max_bytes, max(len(raw), 1) * _MAX_GZIP_RATIO)
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(raw, limit + 1)
    except zlib.error:
        raise ApiError(400, "request body is not valid gzip") from None
    if len(data) > limit:
        raise ApiError(413, f"decompressed body is larger than {limit} bytes")
    if not inflater.eof:
        raise ApiError(400, "gzip body is truncated")
    return data
