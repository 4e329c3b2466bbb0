"""`points-service pii`: the keys that protect national ID numbers, and their rotation."""

from __future__ import annotations

import click

from ._runtime import load_settings, runtime


@click.group()
def pii() -> None:
    """Encryption keys for national ID numbers (and webhook secrets)."""


@pii.command("generate-key")
def pii_generate_key() -> None:
    """Print a new random 32-byte key (base64) for POINTS_ENCRYPTION_KEYS or POINTS_INDEX_KEY."""
    from ..persistence.pii import generate_key

    click.echo(generate_key())


@pii.command("rotate")
@click.option("--batch", type=click.IntRange(min=1), default=1000, show_default=True)
def pii_rotate(batch: int) -> None:
    """Re-encrypt every stored secret under the active (first) key of POINTS_ENCRYPTION_KEYS, and
    rebuild the national-ID index when POINTS_INDEX_KEY has changed.

    \b
    Encryption key: put the new key first and keep the old one after it, run this, then drop the
    old key.
    Index key: set the new POINTS_INDEX_KEY and the old one as POINTS_INDEX_KEY_PREVIOUS for every
    process (restart them), run this, then remove POINTS_INDEX_KEY_PREVIOUS. Until it has finished,
    look-ups try both keys, so a national ID already registered is still found.

    Safe to interrupt and re-run: rows already under the active keys are skipped.
    """
    from ..clock import utc_now
    from ..services.pii_rotation import rotate_encryption

    settings = load_settings()
    with runtime(settings, quiet=True) as (sessions, keys):
        counts = rotate_encryption(sessions, keys, now=utc_now(), batch=batch)
    click.echo(
        f"re-encrypted {counts['practitioners']} national IDs and {counts['webhooks']} webhook secrets "
        f"under key {keys.active_key_id}"
    )
    if keys.previous_index_key is not None:
        click.echo(
            f"rebuilt {counts['indexes']} national-ID index entries under POINTS_INDEX_KEY, which is now the "
            "recorded key; remove POINTS_INDEX_KEY_PREVIOUS and restart"
        )
