from __future__ import annotations

import io
import logging

import pytest
import structlog
from webhook_receivers import dispatch, local, receivers

from points_service.logs import configure_logging

__all__ = ["dispatch", "local", "receivers"]


@pytest.fixture
def log_stream():
    """The service's log lines, as configure_logging writes them (at INFO), in a string."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    yield stream
    root.handlers[:], level = saved
    root.setLevel(level)
    structlog.reset_defaults()
