"""Logging set-up, called once by each entry point, never at import."""

import contextvars
import logging
import sys

import orjson

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

# Attributes every LogRecord has; anything else came in through `extra=` and is context.
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id"}


class ContextFilter(logging.Filter):
    """Adds the current request id to every line."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class KeyValueFormatter(logging.Formatter):
    """`time level logger message key=value ...`: readable, and grep-able by id."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS}
        if record.request_id != "-":
            context = {"request_id": record.request_id, **context}
        if context:
            line += " " + " ".join(f"{k}={_render(v)}" for k, v in context.items())
        return line


def _render(value: object) -> str:
    if isinstance(value, str) and " " not in value:
        return value
    return orjson.dumps(value, default=str).decode()


def configure_logging(level: str, process: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter())
    handler.setFormatter(KeyValueFormatter(f"%(asctime)s %(levelname)s {process} %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # LiteLLM logs request payloads (user content) at INFO.
    for noisy in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm", "httpx", "pymongo"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
