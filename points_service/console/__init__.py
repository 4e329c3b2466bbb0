"""The console: server-rendered pages in Chinese for the people who work the scheme (a
practitioner, a hospital, an inspector, the agency's reviewer, the admin), on the same services
and the same authorization as the API, outside its contract (not in openapi.yaml)."""

from __future__ import annotations

from flask import Flask

# each module adds its pages to the one blueprint
from . import admin, agency, hospital, inspector, practitioner, reviewer, signing  # noqa: F401
from .base import bp, configure


def init_console(app: Flask) -> None:
    configure(app)
    app.register_blueprint(bp)


__all__ = ["init_console"]
