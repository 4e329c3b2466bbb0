"""Optimistic locking for human review steps, and the per-person lock taken before them."""

from __future__ import annotations

from sqlalchemy import inspect
from sqlalchemy.orm import Session

from ..persistence.models import Practitioner
from .errors import PreconditionFailed, StaleVersion


def lock_owner(session: Session, record) -> Practitioner:
    """Lock the person a workflow record belongs to, then re-read the record as committed.

    The record was read before the lock; once another reviewer's transaction has committed, the
    refresh shows its new status and version, so this one answers 409 instead of acting twice.
    """
    from ..persistence import queries

    owner = session.get(Practitioner, record.practitioner_id)
    assert owner is not None
    locked = queries.lock_practitioner(session, owner.code)
    assert locked is not None
    # the columns only: relationships the caller loaded (the person's code) stay loaded
    session.refresh(record, attribute_names=[a.key for a in inspect(type(record)).column_attrs])
    return locked


def check_version(current: int, sent: int | None, if_match: int | None) -> None:
    """A review carries the version it saw: stale body version -> 409, stale If-Match -> 412."""
    if if_match is not None and if_match != current:
        raise PreconditionFailed(
            f"If-Match {if_match} does not match the current version {current}", version=current
        )
    if sent is not None and sent != current:
        raise StaleVersion(
            f"version {sent} is stale; the current version is {current}; reload and retry", version=current
        )
