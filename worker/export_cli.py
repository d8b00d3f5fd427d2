"""`python -m worker export --format csv --since ... > file.csv`: the API's export, written to stdout.

Same validation (ExportParams) and the same writer (export_chunks) as GET /export_data and the
export jobs, so the file is identical. A progress bar goes to stderr when stderr is a terminal.
"""

import argparse
import sys
from typing import BinaryIO

from pydantic import ValidationError
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from shared.export import ExportCounter, ExportPlan, mongo_filter
from shared.export_csv import TooManyColumns
from shared.export_formats import export_chunks, plan_columns
from shared.export_params import ExportFormat, ExportParams
from shared.mongo import create_mongo_client
from shared.records import COLLECTIONS, Kind
from shared.settings import Settings
from worker.progress import ProgressBar


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m worker export",
                                     description="Export stored records to stdout in (timestamp, id) order.")
    parser.add_argument("--format", choices=[f.value for f in ExportFormat], default=ExportFormat.JSON.value)
    parser.add_argument("--since", help="ISO-8601; records at or after this time")
    parser.add_argument("--until", help="ISO-8601; records strictly before this time")
    parser.add_argument("--user-id")
    parser.add_argument("--session-id")
    parser.add_argument("--query-id", help="the query with this id and the events linked to it")
    parser.add_argument("--type", choices=[k.value for k in Kind])
    parser.add_argument("--event-type", action="append", default=[], help="repeatable")
    parser.add_argument("--flatten", action="store_true", help="CSV: one column per extra_data key path")
    parser.add_argument("--output", "-o", help="write here instead of stdout")
    return parser


def parse_params(argv: list[str]) -> tuple[ExportParams, str | None]:
    """Raises SystemExit(2) with a message on bad arguments, like argparse itself."""
    parser = build_parser()
    args = vars(parser.parse_args(argv))
    output = args.pop("output")
    try:
        return ExportParams.model_validate({k: v for k, v in args.items() if v not in (None, [], False)}), output
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in exc.errors())
        parser.error(problems)
        raise  # parser.error exits; this keeps type checkers calm


async def run_export_cli(settings: Settings, argv: list[str]) -> int:
    params, output = parse_params(argv)
    mongo = create_mongo_client(settings)
    db = mongo[settings.MONGO_DB]
    out: BinaryIO = open(output, "wb") if output else sys.stdout.buffer  # noqa: SIM115 - closed below
    try:
        plan = await plan_columns(db, ExportPlan(params), settings.EXPORT_MAX_COLUMNS)
        await write_export(db, plan, out, show_progress=sys.stderr.isatty())
        return 0
    except TooManyColumns as exc:
        sys.stderr.write(f"error: {exc}; export without --flatten or with narrower filters\n")
    except PyMongoError as exc:
        sys.stderr.write(f"error: MongoDB is unavailable ({type(exc).__name__}); check MONGODB_URI\n")
    except BrokenPipeError:  # e.g. piped into `head`: the reader has what it wanted
        return 0
    finally:
        if output:
            out.close()
        await mongo.close()
    return 1


async def write_export(db: AsyncDatabase, plan: ExportPlan, out: BinaryIO, *, show_progress: bool) -> int:
    counter = ExportCounter()
    bar = ProgressBar(await count_selected(db, plan)) if show_progress else None
    async for chunk in export_chunks(db, plan, counter):
        out.write(chunk)
        if bar:
            bar.update(counter.records)
    out.flush()
    if bar:
        bar.finish(counter.records)
    return counter.records


async def count_selected(db: AsyncDatabase, plan: ExportPlan) -> int:
    """Only for the bar's total; one count per collection."""
    total = 0
    for kind in plan.params.kinds:
        total += await db[COLLECTIONS[kind]].count_documents(mongo_filter(kind, plan.params, plan))
    return total
