"""`points-service`: every operator command, one module per group of commands.

This module defines the `main` group and adds each module's commands to it; the command modules
share only `_runtime` and never import one another.
"""

from __future__ import annotations

from typing import Any

import click
from sqlalchemy.exc import OperationalError

from ..persistence.schema import MigrationsNotFound
from ..settings import DEFAULT_DATABASE_URL
from . import db, demo, imports, keys, openapi, pii, scheduler, serve
from ._runtime import describe_database, refuse


class _Main(click.Group):
    """Database connection failures are the environment's, not a bug: say so in one line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OperationalError as exc:
            reason = str(exc.orig or exc).strip().splitlines()[0]
            refuse(f"database error: {reason} (the database is POINTS_DATABASE_URL)")
        except MigrationsNotFound as exc:
            refuse(str(exc))


@click.group(
    cls=_Main,
    help="points_service: demerit points and payment eligibility (医保支付资格管理).\n\n"
    f"Settings come from the environment (see the README). The database is POINTS_DATABASE_URL; by "
    f"default the SQLite file {describe_database(DEFAULT_DATABASE_URL)}, whatever folder a command is "
    "started from.",
)
@click.version_option(package_name="points-service", prog_name="points-service")
def main() -> None:
    pass


for command in (
    db.db,
    keys.keys,
    pii.pii,
    serve.run,
    serve.serve,
    scheduler.scheduler,
    scheduler.jobs,
    openapi.openapi,
    imports.import_,
    demo.demo,
):
    main.add_command(command)
