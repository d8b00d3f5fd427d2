"""Turns an export plan into bytes: a JSON array, NDJSON or CSV, in chunks of about 64 KiB.

The API route, the export job and the CLI all write through `export_chunks`, so the three give
byte-for-byte the same file for the same plan and data.
"""

import dataclasses
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from shared.export import ExportCounter, ExportPlan, dumps_record, iter_record_batches
from shared.export_csv import CsvEncoder, collect_extra_paths, csv_columns
from shared.export_params import ExportFormat, as_utc

CHUNK_BYTES = 64 * 1024

MEDIA_TYPES = {
    ExportFormat.JSON: "application/json",
    ExportFormat.NDJSON: "application/x-ndjson",
    ExportFormat.CSV: "text/csv; charset=utf-8",
}


def export_filename(fmt: ExportFormat, at: datetime) -> str:
    return f"llm-export-{as_utc(at):%Y%m%dT%H%M%SZ}.{fmt.value}"


async def plan_columns(db: AsyncDatabase, plan: ExportPlan, max_columns: int) -> ExportPlan:
    """Fix the CSV header before the first byte is written. Raises TooManyColumns."""
    if plan.params.format is not ExportFormat.CSV:
        return plan
    paths = await collect_extra_paths(db, plan, max_columns) if plan.params.flatten else None
    return dataclasses.replace(plan, columns=csv_columns(paths))


async def export_chunks(db: AsyncDatabase, plan: ExportPlan, counter: ExportCounter | None = None,
                        chunk_bytes: int = CHUNK_BYTES) -> AsyncIterator[bytes]:
    counter = counter or ExportCounter()
    pieces = _encode(iter_record_batches(db, plan), plan, counter)
    buffer = bytearray()
    async for piece in pieces:
        buffer += piece
        if len(buffer) >= chunk_bytes:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


async def _encode(batches: AsyncIterator[list[dict[str, Any]]], plan: ExportPlan,
                  counter: ExportCounter) -> AsyncIterator[bytes]:
    fmt = plan.params.format
    if fmt is ExportFormat.CSV:
        encoder = CsvEncoder(plan.columns or csv_columns())
        yield encoder.header()
    separator = b"["
    async for batch in batches:
        counter.records += len(batch)
        if fmt is ExportFormat.JSON:
            yield separator + b",\n".join(_dumps_all(batch))
            separator = b",\n"
        elif fmt is ExportFormat.NDJSON:
            yield b"\n".join(_dumps_all(batch)) + b"\n"
        else:
            yield encoder.encode(batch)
    if fmt is ExportFormat.JSON:
        yield b"[]\n" if separator == b"[" else b"]\n"


def _dumps_all(batch: list[dict[str, Any]]) -> Iterator[bytes]:
    return map(dumps_record, batch)
