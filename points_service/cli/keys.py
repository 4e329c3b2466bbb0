"""`points-service keys`: API keys (stored hashed; a key is printed once)."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Any

import click

from ._runtime import load_settings, open_sessions


@click.group()
def keys() -> None:
    """API keys (stored hashed; the key is printed once)."""


@contextlib.contextmanager
def _transaction(*, write: bool) -> Iterator[Any]:
    """One session in one transaction on the database of the settings."""
    from ..persistence.engine import transaction

    url = load_settings().database_url
    with open_sessions(url) as sessions, transaction(sessions, write=write) as session:
        yield session


@keys.command("create")
@click.option(
    "--role",
    required=True,
    type=click.Choice(["admin", "inspector", "reviewer", "hr_system", "practitioner"]),
)
@click.option("--institution", "institution_code", help="institution code (hr_system keys)")
@click.option("--practitioner", "practitioner_code", help="practitioner code (practitioner keys)")
@click.option("--name", default=None, help="who holds the key")
@click.option("--expires-in-days", type=click.IntRange(min=1), default=None)
def keys_create(role, institution_code, practitioner_code, name, expires_in_days) -> None:
    """Create an API key and print it once."""
    from ..clock import utc_now
    from ..services.errors import PointsServiceError
    from ..services.keys import CreateKey, create_key

    now = utc_now()
    expires = now + dt.timedelta(days=expires_in_days) if expires_in_days else None
    command = CreateKey(
        role=role,
        name=name or role,
        institution_code=institution_code,
        practitioner_code=practitioner_code,
        expires_at=expires,
    )
    try:
        with _transaction(write=True) as session:
            key, secret = create_key(session, command, now=now)
    except PointsServiceError as exc:
        raise click.ClickException(exc.detail) from None
    click.echo(f"created {role} key {key.prefix}… (id {key.id}); it is shown only now:", err=True)
    click.echo(secret)


@keys.command("list")
def keys_list() -> None:
    """List keys: prefix, role, scope, name, created, last used, expiry, revocation (never the key)."""
    from ..services.keys import list_keys

    with _transaction(write=False) as session:
        rows = list_keys(session)
    click.echo(
        f"{'id':>4}  {'prefix':<14} {'role':<12} {'scope':<20} {'last used':<20} {'expires':<20} state  name"
    )
    for key, institution, practitioner in rows:
        state = "revoked" if key.revoked_at else "active"
        click.echo(
            f"{key.id:>4}  {key.prefix:<14} {key.role:<12} {(institution or practitioner or '-'):<20} "
            f"{_when(key.last_used_at):<20} {_when(key.expires_at):<20} {state:<6} {key.name}"
        )


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"


@keys.command("revoke")
@click.argument("key_ref")
def keys_revoke(key_ref: str) -> None:
    """Revoke a key by id or prefix; it gets 401 from the next request on."""
    from ..clock import utc_now
    from ..services.errors import PointsServiceError
    from ..services.keys import revoke_key

    try:
        with _transaction(write=True) as session:
            key = revoke_key(session, key_ref, now=utc_now())
    except PointsServiceError as exc:
        raise click.ClickException(exc.detail) from None
    click.echo(f"revoked {key.prefix} (id {key.id})")


@keys.command("rotate")
@click.argument("key_ref")
@click.option(
    "--grace-days",
    type=click.IntRange(min=0),
    default=7,
    show_default=True,
    help="how long the old key keeps working",
)
def keys_rotate(key_ref: str, grace_days: int) -> None:
    """Issue a new key with the same role and scope; the old one expires after the grace period."""
    from ..clock import utc_now
    from ..services.errors import PointsServiceError
    from ..services.keys import rotate_key

    grace = dt.timedelta(days=grace_days)
    try:
        with _transaction(write=True) as session:
            key, secret = rotate_key(session, key_ref, grace=grace, now=utc_now())
    except PointsServiceError as exc:
        raise click.ClickException(exc.detail) from None
    click.echo(
        f"new key {key.prefix}… (id {key.id}); the old one expires in {grace_days} days; shown only now:",
        err=True,
    )
    click.echo(secret)
