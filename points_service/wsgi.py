"""`app` for gunicorn: the only module that builds an app at import."""

from . import create_app

app = create_app()
