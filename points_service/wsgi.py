"""`app` for gunicorn: the only module that builds an app at import."""

from . import create_app
from .logs import configure_logging
from .settings import Settings

settings = Settings.from_env()
configure_logging(settings.log_level)
app = create_app(settings)
