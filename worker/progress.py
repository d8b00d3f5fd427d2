"""A one-line progress bar for the CLI, drawn on stderr only when stderr is a terminal."""

import sys
import time
from typing import TextIO

_REDRAW_S = 0.2
_WIDTH = 30


class ProgressBar:
    def __init__(self, total: int | None, stream: TextIO = sys.stderr) -> None:
        self.total, self.stream = total, stream
        self.started = self._drawn = time.monotonic()

    def update(self, done: int, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._drawn < _REDRAW_S:
            return
        self._drawn = now
        rate = done / max(now - self.started, 1e-9)
        if self.total:
            share = min(done / self.total, 1.0)
            bar = "#" * int(share * _WIDTH)
            line = f"[{bar:<{_WIDTH}}] {done:,}/{self.total:,} records {share:4.0%}  {rate:,.0f}/s"
        else:
            line = f"{done:,} records  {rate:,.0f}/s"
        self.stream.write(f"\r{line}\033[K")
        self.stream.flush()

    def finish(self, done: int) -> None:
        self.update(done, force=True)
        self.stream.write("\n")
        self.stream.flush()
