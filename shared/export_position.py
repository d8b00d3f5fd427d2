"""A record's place in export order, (timestamp, id, type), and the opaque paging cursor that holds it."""

import base64
import binascii
from datetime import datetime
from typing import Any, NamedTuple

import orjson

from shared.export_params import from_epoch_ms, to_epoch_ms
from shared.records import Kind

_CURSOR_VERSION = 1


class Position(NamedTuple):
    """Compares like the tuple it is. `timestamp` is naive UTC, as PyMongo returns BSON dates."""

    timestamp: datetime
    id: str
    kind: str

    @classmethod
    def of(cls, kind: Kind, document: dict[str, Any]) -> "Position":
        return cls(document["timestamp"], document["_id"], kind.value)


def encode_cursor(position: Position) -> str:
    payload = orjson.dumps([_CURSOR_VERSION, to_epoch_ms(position.timestamp), position.id, position.kind])
    return base64.urlsafe_b64encode(payload).rstrip(b"=").decode()


def decode_cursor(token: str) -> Position:
    """Raises ValueError for anything this server did not issue."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        version, ms, record_id, kind = orjson.loads(raw)
    except (binascii.Error, orjson.JSONDecodeError, ValueError, TypeError):
        raise ValueError("cursor is not one this server issued") from None
    if version != _CURSOR_VERSION or not isinstance(ms, int) or not isinstance(record_id, str):
        raise ValueError("cursor is not one this server issued")
    try:
        return Position(from_epoch_ms(ms).replace(tzinfo=None), record_id, Kind(kind).value)
    except (ValueError, OverflowError):
        raise ValueError("cursor is not one this server issued") from None


def after_clause(position: Position, kind: Kind) -> dict[str, Any]:
    """Documents of `kind` strictly after `position` in (timestamp, id, type) order.

    The plain `$gte` keeps the index bound tight; the `$or` settles ties on the timestamp.
    """
    id_operator = "$gte" if kind.value > position.kind else "$gt"
    return {"$and": [
        {"timestamp": {"$gte": position.timestamp}},
        {"$or": [{"timestamp": {"$gt": position.timestamp}},
                 {"timestamp": position.timestamp, "_id": {id_operator: position.id}}]},
    ]}
