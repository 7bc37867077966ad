"""Structured JSON logs, with per-invocation keys (finding_id, instance_id, correlation_id) bound once."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from typing import Any

# Never mutated in place: bind() sets a new dict, so the default is shared safely.
_bound: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("responder_log_keys", default={})  # noqa: B039
_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


def bind(**keys: Any) -> None:
    """Add keys to every log line of this invocation (and of the threads it starts)."""
    _bound.set({**_bound.get(), **{key: value for key, value in keys.items() if value is not None}})


def clear() -> None:
    _bound.set({})


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_bound.get(),
        }
        line.update({key: value for key, value in vars(record).items() if key not in _RESERVED})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure(level: str = "INFO") -> None:
    """Send the package's logs to stdout as JSON (what Lambda ships to CloudWatch Logs)."""
    logger = logging.getLogger("guardduty_responder")
    if any(isinstance(handler.formatter, JsonFormatter) for handler in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
