"""Structured logs: one JSON object per line, with the request id on every line of a request, and
national-ID-shaped values masked whatever logged them."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import orjson
import structlog
from structlog.typing import Processor

NATIONAL_ID = re.compile(r"(?<![0-9A-Za-z])(\d)\d{16}([\dXx])(?![0-9A-Za-z])")


def redact(value: str) -> str:
    """The same mask as responses give: the first and the last character only."""
    return NATIONAL_ID.sub(lambda m: f"{m.group(1)}{'*' * 16}{m.group(2)}", value)


def _redact_event(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = redact(value)
    return event


SHARED: list[Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.processors.format_exc_info,
]


def json_formatter() -> logging.Formatter:
    """The formatter of every log line: one JSON object, national IDs masked. Records from plain
    stdlib loggers (gunicorn's, SQLAlchemy's) get the same fields as structlog's own."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=SHARED,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _redact_event,
            structlog.processors.JSONRenderer(serializer=_dumps),
        ],
    )


def _dumps(event: Any, **_kwargs: Any) -> str:
    # orjson: a line per request is on the hot path; UTF-8 as it is (Chinese names stay readable),
    # anything that is not JSON as its str()
    return orjson.dumps(event, default=str).decode()


def configure_logging(level: str = "INFO", *, stream: Any = None) -> None:
    """Route stdlib logging (ours, gunicorn's, SQLAlchemy's, APScheduler's) through one JSON renderer."""
    structlog.configure(
        processors=[*SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(json_formatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
