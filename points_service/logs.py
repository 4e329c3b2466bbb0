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
    if len(value) < 18:
        # shorter than a national ID: most of a line's values (every request's access line)
        return value
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


def _dumps(event: Any, **_kwargs: Any) -> str:
    # orjson: a line per request is on the hot path; UTF-8 as it is (Chinese names stay readable),
    # anything that is not JSON as its str()
    return orjson.dumps(event, default=str).decode()


# an event's line, for structlog's own events and stdlib records alike
RENDER: list[Processor] = [_redact_event, structlog.processors.JSONRenderer(serializer=_dumps)]


def json_formatter() -> logging.Formatter:
    """The formatter of stdlib records (gunicorn's, SQLAlchemy's, ours through logging): one JSON
    object, national IDs masked, with the same fields as structlog's own lines."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=SHARED,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *RENDER],
    )


class _Output:
    """Where structlog's own lines go: the stream of the root's JSON handler, under that handler's
    lock, so that they never interleave with a stdlib record's line; and the level they must reach."""

    handler: logging.StreamHandler | None = None
    level = logging.INFO


_OUTPUT = _Output()
# a structlog method name -> its stdlib level ("exception" logs at ERROR with the traceback)
_LEVELS = {
    **{name.lower(): number for name, number in logging.getLevelNamesMapping().items()},
    "exception": logging.ERROR,
}


def _at_level(_logger: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    if _LEVELS.get(method, logging.INFO) < _OUTPUT.level:
        raise structlog.DropEvent
    return event


class _LineWriter:
    """structlog's logger: writes the line its processors rendered, whole, to the output.

    Our own lines (an access line every request) are rendered by structlog itself and skip the
    stdlib's LogRecord, handler and Formatter, which cost about four times the rendering: the
    same processors give the same JSON object as a stdlib record's line gets from json_formatter."""

    def __init__(self, name: str = "") -> None:
        # structlog.stdlib.add_logger_name reads it
        self.name = name

    def write(self, line: str) -> None:
        handler = _OUTPUT.handler
        if handler is None:
            return
        # the handler's own lock, as its emit() takes it for a stdlib record
        handler.acquire()
        try:
            handler.stream.write(line + "\n")
            handler.flush()
        finally:
            handler.release()

    debug = info = warning = warn = error = exception = critical = fatal = msg = write


def configure_logging(level: str = "INFO", *, stream: Any = None) -> None:
    """Every line one JSON object on one stream: structlog's own lines (ours) rendered by structlog,
    stdlib records (gunicorn's, SQLAlchemy's, APScheduler's, ours through logging) by json_formatter."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(json_formatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    _OUTPUT.handler, _OUTPUT.level = handler, root.level
    structlog.configure(
        processors=[_at_level, *SHARED, *RENDER],
        # the generic BoundLogger: the level is checked by _at_level, so a reconfigured level also
        # holds for loggers cached before
        wrapper_class=structlog.BoundLogger,
        logger_factory=_LineWriter,
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
