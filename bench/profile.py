"""Samples one API worker process with py-spy while wrk loads it, and sums where the time goes."""

import collections
import re
import subprocess
import sys
from pathlib import Path

PY_SPY = Path(sys.executable).parent / "py-spy"
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^:()]+):\d+\)$")

# Buckets for the summary, first match wins: which layer a sampled leaf frame belongs to.
_LAYERS = [
    ("our code (api/, shared/)", ("api/", "shared/")),
    ("redis-py + hiredis", ("redis/",)),
    ("pydantic", ("pydantic",)),
    ("FastAPI + Starlette", ("fastapi/", "starlette/")),
    ("uvicorn + httptools", ("uvicorn/", "httptools")),
    ("asyncio + uvloop", ("asyncio/", "uvloop")),
]


def start_profile(pid: int, seconds: int, output: Path) -> subprocess.Popen:
    """py-spy in the background (`--nonblocking`: the target is never paused); wait() on the result."""
    output.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([str(PY_SPY), "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "250",
                             "--format", "raw", "--nonblocking", "--output", str(output)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def summarise(raw_path: Path, top: int = 12) -> dict:
    """Self time by layer, and the functions with the most self time, as shares of all samples."""
    layers: collections.Counter[str] = collections.Counter()
    functions: collections.Counter[str] = collections.Counter()
    ours: collections.Counter[str] = collections.Counter()  # samples with the function anywhere on the stack
    total = 0
    for line in raw_path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames = stack.split(";")
        leaf = frames[-1]
        samples = int(count)
        total += samples
        functions[leaf] += samples
        for name in {_function(frame) for frame in frames if "(api/" in frame or "(shared/" in frame}:
            ours[name] += samples
        match = _FRAME.match(leaf)
        file = match["file"] if match else leaf
        layers[next((name for name, marks in _LAYERS if file.startswith(marks)), "other (stdlib, ...)")] += samples
    share = (lambda n: round(100 * n / total, 1)) if total else (lambda n: 0.0)
    return {"samples": total,
            "self_by_layer_pct": {name: share(n) for name, n in layers.most_common()},
            "top_self_pct": {name: share(n) for name, n in functions.most_common(top)},
            "ours_inclusive_pct": {name: share(n) for name, n in ours.most_common(top)}}


def _function(frame: str) -> str:
    """"build_batch (api/batch.py:60)" -> "api/batch.py:build_batch": one entry per function, not per line."""
    match = _FRAME.match(frame)
    return f"{match['file']}:{match['function']}" if match else frame
