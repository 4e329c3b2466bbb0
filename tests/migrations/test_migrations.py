"""The migrations are the only way the schema is made: they must build, match the models and undo."""

from __future__ import annotations

import datetime as dt

import pytest
from pytest_alembic.tests import (
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

__all__ = [
    "test_model_definitions_match_ddl",
    "test_single_head_revision",
    "test_up_down_consistency",
    "test_upgrade",
]


def _seed_ledger(connection) -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC).replace(tzinfo=None)
    connection.execute(
        text(
            "INSERT INTO institution (id, code, name, kind, region_code, created_at) "
            "VALUES (1, 'H1', 'H', 'medical_institution', '130100', :now)"
        ),
        {"now": now},
    )
    connection.execute(
        text(
            "INSERT INTO practitioner (id, code, name, category, national_id_cipher, national_id_index, "
            "national_id_masked, created_at) VALUES (1, 'P1', 'P', 'nurse', :c, 'idx', 'm', :now)"
        ),
        {"c": b"x", "now": now},
    )
    connection.execute(
        text(
            "INSERT INTO violation (id, case_ref, practitioner_id, institution_id, behaviour_code, "
            "responsibility, points, occurred_on, decided_on, score_year, profile_id, evidence_refs, "
            "fingerprint, created_at, created_by) "
            "VALUES (1, 'C1', 1, 1, 'B1-01', 'general', 1, '2026-01-01', '2026-01-01', 2026, "
            "'hebei-2025', '[]', 'f', :now, 'test')"
        ),
        {"now": now},
    )
    connection.execute(
        text(
            "INSERT INTO ledger_entry (id, practitioner_id, kind, score_year, effective_on, points, "
            "violation_id, profile_id, recorded_at, recorded_by) "
            "VALUES (1, 1, 'decision', 2026, '2026-01-01', 1, 1, "
            "'hebei-2025', :now, 'test')"
        ),
        {"now": now},
    )


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_entry SET points = 12 WHERE id = 1",
        "DELETE FROM ledger_entry WHERE id = 1",
        "UPDATE violation SET points = 3 WHERE id = 1",
        "DELETE FROM violation WHERE id = 1",
    ],
)
def test_the_database_refuses_to_edit_or_delete_the_ledger(alembic_runner, alembic_engine, statement):
    alembic_runner.migrate_up_to("heads")
    with alembic_engine.begin() as connection:
        _seed_ledger(connection)
    with pytest.raises(DBAPIError, match="append-only"), alembic_engine.begin() as connection:
        connection.execute(text(statement))
    with alembic_engine.connect() as connection:
        assert connection.execute(text("SELECT points FROM ledger_entry WHERE id = 1")).scalar() == 1


def test_stored_national_id_masks_are_cut_to_one_character_at_each_end(alembic_runner, alembic_engine):
    alembic_runner.migrate_up_to("0005")
    now = dt.datetime(2026, 1, 1)
    with alembic_engine.begin() as connection:
        for pid, masked in ((1, "1301**********123X"), (2, "1101**********0021")):
            connection.execute(
                text(
                    "INSERT INTO practitioner (id, code, name, category, national_id_cipher, "
                    "national_id_index, national_id_masked, created_at) "
                    "VALUES (:id, :code, 'P', 'nurse', :c, :idx, :m, :now)"
                ),
                {"id": pid, "code": f"P{pid}", "c": b"x", "idx": f"idx{pid}", "m": masked, "now": now},
            )
    alembic_runner.migrate_up_one()
    with alembic_engine.connect() as connection:
        masks = connection.execute(text("SELECT national_id_masked FROM practitioner ORDER BY id")).scalars()
        assert list(masks) == ["1****************X", "1****************1"]
