"""The end-of-scenario check (2xx ids == stored ids, nothing twice) and the summary table it feeds."""

import time
from collections import Counter
from dataclasses import asdict, dataclass

import orjson

from tests.faults.load import LoadRun
from tests.faults.stack import FaultStack


@dataclass
class Row:
    scenario: str
    sent: int
    accepted: int
    stored: int
    duplicates: int
    dead_lettered: int
    refused: int  # attempts that got no 2xx (503s, refused connections); retried with the same event_id
    fallback: int  # 2xx answered by writing MongoDB directly (Redis down)
    drain_s: float  # from the last response to: stream empty, nothing pending, every 2xx id stored
    note: str = ""


COLUMNS = [("scenario", 28), ("sent", 6), ("accepted", 9), ("stored", 7), ("duplicates", 11),
           ("dead_lettered", 14), ("refused", 8), ("fallback", 9), ("drain_s", 8)]


def check_exactly_once(stack: FaultStack, load: LoadRun, *, poison_ids: frozenset[str] = frozenset(),
                       drain_timeout_s: float = 60, note: str = "") -> Row:
    """Assert the promise: every 2xx id is stored exactly once, and nothing is stored that was not sent.

    Every event carries an `event_id`, so even a request that got no 2xx has a known id: it may be
    stored (Redis took it, the answer was lost) but never twice. Retries make the sets equal.
    """
    plan, result = load.plan, load.result
    assert result.unexpected == [], result.unexpected[:5]
    assert stack.wait_drained(result.accepted, plan.scenario, drain_timeout_s), _state(stack, load)
    drain_s = 0.0 if not result.finished_at else max(0.0, time.monotonic() - result.finished_at)
    documents = stack.stored_events(plan.scenario)
    ids = [doc["_id"] for doc in documents]
    stored = set(ids)
    letters = stack.dead_letters()
    lettered_valid = {letter["_id"] for letter in letters if f'"scenario":"{plan.scenario}"' in letter["data"]}
    lettered_poison = {letter["_id"] for letter in letters if letter["_id"] in poison_ids}
    duplicates = (
        (len(ids) - len(stored))  # the same _id twice (impossible with a unique _id; counted anyway)
        + (len(documents) - len({doc.get("event_id") for doc in documents}))  # one request under two ids
        + len(stored & {_record_id(letter) for letter in letters})  # stored and dead-lettered
    )

    assert result.accepted - stored == set(), f"{len(result.accepted - stored)} ids got a 2xx but are not stored"
    assert stored - result.sent == set(), f"{len(stored - result.sent)} stored ids were never sent"
    assert stored == result.accepted, f"{len(stored - result.accepted)} stored ids never got a 2xx"
    assert result.sent == result.accepted, f"{len(result.sent - result.accepted)} events never got a 2xx"
    assert duplicates == 0, f"{duplicates} duplicates"
    assert lettered_valid == set(), f"{len(lettered_valid)} valid records were dead-lettered"
    assert lettered_poison == poison_ids, f"poison not dead-lettered: {sorted(poison_ids - lettered_poison)[:5]}"
    return Row(plan.scenario, len(result.sent), len(result.accepted), len(stored), duplicates,
               len(lettered_poison | lettered_valid), result.refused, result.fallback, round(drain_s, 2), note)


def _record_id(letter: dict) -> str | None:
    """The record id inside a dead letter's raw data, if it has one."""
    try:
        data = orjson.loads(letter.get("data", ""))
    except orjson.JSONDecodeError:
        return None
    return data.get("id") if isinstance(data, dict) else None


def _state(stack: FaultStack, load: LoadRun) -> str:
    stored = stack.stored_event_ids(load.plan.scenario)
    return (f"not drained: backlog={stack.backlog()} pending={stack.pending_by_consumer()} "
            f"missing={len(load.result.accepted - stored)} statuses={dict(load.result.statuses)}")


def format_table(rows: list[Row]) -> str:
    header = " ".join(name.ljust(width) for name, width in COLUMNS)
    lines = [header, "-" * len(header)]
    for row in sorted(rows, key=lambda r: r.scenario):
        values = asdict(row)
        lines.append(" ".join(str(values[name]).ljust(width) for name, width in COLUMNS))
        if row.note:
            lines.append(f"    {row.note}")
    totals = Counter()
    for row in rows:
        totals.update({"sent": row.sent, "accepted": row.accepted, "stored": row.stored})
    lines.append(f"total: sent={totals['sent']} accepted={totals['accepted']} stored={totals['stored']}")
    return "\n".join(lines)
