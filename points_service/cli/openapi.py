"""`points-service openapi`: the OpenAPI document generated from the code."""

from __future__ import annotations

from pathlib import Path

import click

from ..settings import Settings


@click.group()
def openapi() -> None:
    """The OpenAPI document generated from the code."""


def spec_dict() -> dict:
    from .. import create_app

    app = create_app(Settings(database_url="sqlite://"))
    return app.extensions["points_service.api"].spec.to_dict()


@openapi.command("write")
@click.argument("path", type=click.Path(dir_okay=False, writable=True), default="openapi.yaml")
def openapi_write(path: str) -> None:
    """Write the OpenAPI document (committed as openapi.yaml; a test fails when it drifts)."""
    import yaml

    Path(path).write_text(yaml.safe_dump(spec_dict(), sort_keys=False, allow_unicode=True), "utf-8")
    click.echo(f"wrote {path}", err=True)
