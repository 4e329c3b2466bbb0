"""`points-service import violations` as the operator meets it: the columns in the help, the
registry and then the decisions imported from files, a rerun that records nothing twice, and bad
rows answered one a line with their line numbers."""

from __future__ import annotations

from pathlib import Path

from click.testing import Result


def _write(folder: Path, name: str, lines: list[str]) -> str:
    path = folder / name
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return str(path)


def test_the_help_lists_the_columns_of_a_decisions_file(invoke):
    text = " ".join(invoke("import", "--help").output.split())
    assert "violations case_ref,practitioner_code,institution_code,behaviour_code," in text
    assert "responsibility,occurred_on,decided_on [,points,adjustment,adjustment_reason,description]" in text


def test_decisions_are_imported_after_the_registry_and_a_rerun_records_nothing_twice(invoke, fresh, tmp_path):
    env = {"POINTS_DATABASE_URL": fresh("violations", migrated=True)}

    def run(*args: str) -> Result:
        return invoke("import", *args, env=env)

    files = {
        "institutions": ["code,name,kind,region_code", "H1,Hospital One,medical_institution,130100"],
        "practitioners": [
            "code,name,id_number,category",
            "P1,Person One,130102195001010017,physician",
            "P2,Person Two,130102195001010025,nurse",
        ],
        "registrations": [
            "practitioner_code,institution_code,start_date",
            "P1,H1,2025-01-01",
            "P2,H1,2025-01-01",
        ],
    }
    for kind, lines in files.items():
        done = run(kind, _write(tmp_path, f"{kind}.csv", lines))
        assert done.exit_code == 0, done.output
    header = (
        "case_ref,practitioner_code,institution_code,behaviour_code,responsibility,occurred_on,decided_on"
    )
    header += ",points"
    decisions = _write(
        tmp_path,
        "decisions.csv",
        [
            header,
            "C-1,P1,H1,B1-01,general,2026-03-01,2026-03-02,",
            "C-2,P2,H1,B2-01,main,2026-04-01,2026-04-01,6",
        ],
    )
    first = run("violations", decisions)
    assert first.exit_code == 0, first.output
    assert first.stdout.startswith("imported 2 violations from decisions.csv in ")
    again = run("violations", decisions, "--skip-existing")
    assert again.exit_code == 0, again.output
    assert "imported 0 violations" in again.stdout and "2 already there, skipped" in again.stdout
    bad = _write(
        tmp_path,
        "bad.csv",
        [
            header,
            "C-3,P1,H1,B1-01,general,2024-12-01,2026-03-02,",
            "C-1,P1,H1,B1-01,main,2026-03-01,2026-03-02,",
        ],
    )
    refused = run("violations", bad)
    assert refused.exit_code == 1
    assert refused.stderr.splitlines() == [
        "line 2: occurred_on: practitioner P1 was not registered at H1 on 2024-12-01",
        "line 3: case_ref: case C-1 is already recorded with different content",
        "bad.csv: 2 bad row(s); nothing imported (--skip-bad imports the good rows)",
    ]
