"""Reads the server-sent events of a streamed /query, as a front end would."""

import json
from collections.abc import Iterable, Iterator
from typing import Any

Event = tuple[str, dict[str, Any]]


def iter_events(lines: Iterable[str]) -> Iterator[Event]:
    """(event name, JSON data) per event; a blank line ends each one."""
    name, data = "message", []
    for line in lines:
        if not line:
            if data:
                yield name, json.loads("\n".join(data))
            name, data = "message", []
        elif line.startswith("event:"):
            name = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            data.append(line.removeprefix("data:").strip())


def parse_events(text: str) -> list[Event]:
    return list(iter_events(text.splitlines()))


def names(events: list[Event]) -> list[str]:
    """Event names with consecutive deltas collapsed: ["start", "delta", "done"]."""
    collapsed: list[str] = []
    for name, _ in events:
        if not (collapsed and name == collapsed[-1] == "delta"):
            collapsed.append(name)
    return collapsed


def streamed_text(events: list[Event]) -> str:
    return "".join(data["text"] for name, data in events if name == "delta")


def last(events: list[Event], name: str) -> dict[str, Any]:
    return next(data for event, data in reversed(events) if event == name)
