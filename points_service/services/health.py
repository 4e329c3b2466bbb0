"""Readiness: does the database answer (never asked by liveness, so a database blip restarts nothing)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker


def database_answers(sessions: sessionmaker[Session]) -> bool:
    try:
        with sessions() as session:
            session.execute(text("SELECT 1"))
    except Exception:  # any failure to answer is "not ready"; the reason is the operator's log
        return False
    return True
