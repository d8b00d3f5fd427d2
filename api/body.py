"""Reads a JSON request body the way browsers send it: JSON or text/plain (sendBeacon), maybe gzipped."""

import zlib
from typing import Any

from fastapi import Request
from starlette.requests import ClientDisconnect

from api.errors import ApiError, invalid_fields
from api.storable import JsonBodyError, Limits, parse_json, storability_errors

# "" because some clients send no Content-Type at all; text/plain is what sendBeacon sends for a string.
_ACCEPTED_MEDIA_TYPES = frozenset({"application/json", "text/plain", ""})
_GZIP_ENCODINGS = frozenset({"gzip", "x-gzip"})
# A gzip body may inflate to at most this many times its compressed size (decompression bombs).
_MAX_GZIP_MEMBERS = 32
_MAX_GZIP_RATIO = 100


async def read_json_body(request: Request, max_bytes: int, limits: Limits) -> Any:
    """The parsed body, or an ApiError with a clear 4xx for anything unusable.

    Checked in order of cost: content type, declared size, bytes read, encoding, JSON, storability.
    """
    body = await read_json(request, max_bytes)
    if errors := storability_errors(body, limits):
        raise invalid_fields(errors)
    return body


async def read_json(request: Request, max_bytes: int) -> Any:
    """The parsed body, not yet checked for storability (a batch checks each event on its own)."""
    _check_content_type(request.headers.get("content-type", ""))
    raw = await read_capped(request, max_bytes)
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding in _GZIP_ENCODINGS:
        raw = _gunzip(raw, max_bytes)
    elif encoding not in ("identity", ""):
        raise ApiError(415, "Content-Encoding must be gzip or identity")
    if not raw.strip():
        raise ApiError(400, "request body is empty; send a JSON object")
    try:
        return parse_json(raw)
    except JsonBodyError as exc:
        raise ApiError(400, exc.message) from None


async def read_capped(request: Request, max_bytes: int) -> bytes:
    """The raw body; 413 as soon as the declared or received size passes `max_bytes`, before reading on."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large(max_bytes)
    chunks: list[bytes] = []
    size = 0
    # A chunked body has no declared size: count while reading and stop at the limit.
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise too_large(max_bytes)
            chunks.append(chunk)
    except ClientDisconnect:
        # The client hung up mid-body: nothing was queued; answer (to no one) without a traceback.
        raise ApiError(400, "the client disconnected before sending the whole body") from None
    return b"".join(chunks)


def _check_content_type(header: str) -> None:
    media_type = header.split(";", 1)[0].strip().lower()
    if media_type in _ACCEPTED_MEDIA_TYPES:
        return
    # application/vnd.api+json and friends are JSON too.
    if media_type.startswith("application/") and media_type.endswith("+json"):
        return
    raise ApiError(415, "Content-Type must be application/json or text/plain")


def too_large(max_bytes: int) -> ApiError:
    return ApiError(413, f"request body is larger than {max_bytes} bytes", limit_bytes=max_bytes)


def _gunzip(raw: bytes, max_bytes: int) -> bytes:
    """Every gzip member in turn (RFC 1952 allows several), with the size and ratio caps on the sum."""
    limit = min(max_bytes, max(len(raw), 1) * _MAX_GZIP_RATIO)
    members: list[bytes] = []
    size = 0
    rest = raw
    while rest:
        # zlib hands back the rest of the input as a copy after each member: without a cap, 50,000
        # empty members in 1 MiB would cost seconds of CPU. `cat a.gz b.gz` makes a few.
        if len(members) == _MAX_GZIP_MEMBERS:
            raise ApiError(400, f"request body has more than {_MAX_GZIP_MEMBERS} gzip members")
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            data = inflater.decompress(rest, limit - size + 1)
        except zlib.error:
            data = None
        if data is not None and size + len(data) > limit:
            raise ApiError(413, f"decompressed body is larger than {limit} bytes", limit_bytes=limit)
        if data is None or not inflater.eof:
            if members:
                raise ApiError(400, "request body has data after the end of its gzip stream")
            raise ApiError(400, "gzip body is truncated" if data is not None else "request body is not valid gzip")
        size += len(data)
        members.append(data)
        rest = inflater.unused_data
    return b"".join(members)
