"""Serves a finished export file from GridFS, whole or one byte range (RFC 9110 single ranges)."""

from collections.abc import AsyncIterator
from typing import Any, NamedTuple

from gridfs import AsyncGridFSBucket, NoFile
from gridfs.asynchronous.grid_file import AsyncGridOut
from starlette.datastructures import Headers

from api.errors import ApiError
from api.streaming import DownloadResponse, attachment
from shared.export_formats import MEDIA_TYPES
from shared.export_jobs import BUCKET
from shared.export_params import ExportFormat

_READ_BYTES = 256 * 1024


class ByteRange(NamedTuple):
    start: int
    end: int  # inclusive, as in Content-Range


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """None means "send the whole file": no header, or one we may ignore (other units, several ranges,
    bad syntax). Raises ApiError(416) when the range starts beyond the file."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    first, dash, last = spec.strip().partition("-")
    if unit.strip().lower() != "bytes" or "," in spec or not dash:
        return None
    if not (first.isdigit() or first == "") or not (last.isdigit() or last == "") or first == last == "":
        return None
    if first == "":  # the last N bytes
        start, end = max(size - int(last), 0), size - 1
        if int(last) == 0:
            raise _not_satisfiable(size)
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
        if last and int(last) < start:
            return None
    if start >= size:
        raise _not_satisfiable(size)
    return ByteRange(start, end)


async def download_response(db: Any, job: dict[str, Any], headers: Headers) -> DownloadResponse:
    bucket = AsyncGridFSBucket(db, bucket_name=BUCKET)
    try:
        grid_out = await bucket.open_download_stream(job["file_id"])
    except NoFile:
        raise ApiError(404, "the export file is gone (expired); start a new export") from None
    size, etag = grid_out.length, f'"{job["file_id"]}"'
    if_range = headers.get("if-range")
    wanted = parse_range(headers.get("range"), size) if if_range in (None, etag) else None
    response_headers = {"Accept-Ranges": "bytes", "ETag": etag, "Cache-Control": "no-store",
                        "Content-Disposition": attachment(job["filename"])}
    byte_range = wanted or ByteRange(0, size - 1)
    response_headers["Content-Length"] = str(byte_range.end - byte_range.start + 1)
    if wanted is not None:
        response_headers["Content-Range"] = f"bytes {wanted.start}-{wanted.end}/{size}"
    media_type = MEDIA_TYPES[ExportFormat(job["params"]["format"])]
    return DownloadResponse(_read(grid_out, byte_range), status_code=206 if wanted else 200,
                            headers=response_headers, media_type=media_type)


async def _read(grid_out: AsyncGridOut, byte_range: ByteRange) -> AsyncIterator[bytes]:
    try:
        await grid_out.seek(byte_range.start)
        remaining = byte_range.end - byte_range.start + 1
        while remaining > 0:
            data = await grid_out.read(min(remaining, _READ_BYTES))
            if not data:
                return
            remaining -= len(data)
            yield data
    finally:
        await grid_out.close()


def _not_satisfiable(size: int) -> ApiError:
    return ApiError(416, f"range not satisfiable: the file has {size} bytes",
                    headers={"Content-Range": f"bytes */{size}"}, size=size)
