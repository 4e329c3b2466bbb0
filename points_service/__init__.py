"""points_service: demerit points and medical-insurance payment eligibility of practitioners."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import Engine

from .settings import Settings


def create_app(settings: Settings | None = None, *, engine: Engine | None = None) -> Flask:
    """Build the app: engine, sessionmaker, Api, blueprints, error handlers. No work at import."""
    from .api import init_api
    from .api.base import JSONProvider, Runtime
    from .api.observability import init_observability
    from .api.security import init_security
    from .console import init_console
    from .persistence.engine import make_sessionmaker, make_web_engine, read_only
    from .services.keys import PRINCIPALS

    settings = settings or Settings.from_env()
    PRINCIPALS.configure(settings.key_cache_seconds)
    app = Flask("points_service")
    app.json = JSONProvider(app)
    app.json.sort_keys = False
    engine = engine or make_web_engine(settings.database_url)
    replica = make_web_engine(settings.database_read_url) if settings.database_read_url else None
    app.extensions["points_service"] = Runtime(
        settings=settings,
        sessions=make_sessionmaker(engine),
        pii=settings.pii_keys(),
        primary_reads=make_sessionmaker(read_only(engine)),
        read_sessions=make_sessionmaker(read_only(replica)) if replica is not None else None,
    )
    app.extensions["points_service.api"] = init_api(app)
    app.extensions["points_service.limiter"] = init_security(app, settings)
    init_console(app)
    init_observability(app)
    return app
