"""The CSV import: institutions, practitioners, registrations and decisions from an operator's file.

Every row of a file is checked before anything is written, with the API's own checks of each
value (rules.identifiers); a file with bad rows imports nothing unless the caller skips them. A
file is imported in the caller's one transaction. Rows are written in bulk (persistence.copy);
the snapshots of the people they touch are planned and applied by services.state, as for every
other write.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session

from ...persistence import pii
from ...persistence.copy import CONFLICTS
from ...rules.policy import PolicySet
from ..audit import record_audit
from .files import COLUMNS, KINDS, CsvFile, Imported, ImportRefused, Progress, RowErrors, encoding_problem
from .institutions import check_institutions, write_institutions
from .ledger import import_violations, recorded_meanwhile
from .practitioners import import_practitioners
from .registrations import check_registrations, import_registrations
from .violations import check_violations


@dataclass
class ImportReport:
    kind: str
    file: str
    rows: int = 0  # rows imported (with dry_run: rows that would be)
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line, message), line order
    refused: bool = False  # nothing was imported
    existing: int = 0  # rows equal to what is stored, skipped (skip_existing)
    undecodable: int = 0  # lines not in the file's encoding
    dry_run: bool = False
    seconds: float = 0.0

    @property
    def skipped(self) -> int:
        return 0 if self.refused else len(self.errors)


@dataclass(frozen=True)
class ImportOptions:
    skip_bad: bool = False  # import the good rows, report the bad ones
    skip_existing: bool = False  # a row equal to what is stored is skipped, not an error
    dry_run: bool = False  # check everything, write nothing
    encoding: str = "utf-8"
    progress: Progress | None = None


def import_csv(
    session: Session,
    kind: str,
    path: Path,
    *,
    keys: pii.PiiKeys,
    policies: PolicySet,
    now: dt.datetime,
    options: ImportOptions = ImportOptions(),
) -> ImportReport:
    """Check every row of the file, then import it in the session's transaction.

    With bad rows and no `skip_bad` nothing is written (`refused`); with `skip_bad` the good rows
    are written and the bad ones reported. With `skip_existing` a row equal to what is stored is
    counted in `existing` and skipped, and a row that differs from it is a bad row. With `dry_run`
    nothing is written at all. Raises ImportRefused when the file cannot be read.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    started = time.perf_counter()
    errors = RowErrors()
    source = CsvFile(path, options.encoding, options.progress)
    actor = f"import:{path.name}"
    if kind == "practitioners":
        imported = import_practitioners(
            session,
            source,
            errors,
            keys=keys,
            now=now,
            skip_bad=options.skip_bad,
            skip_existing=options.skip_existing,
            dry_run=options.dry_run,
        )
    elif kind == "institutions":
        imported = _import_institutions(session, source, errors, options=options, now=now)
    elif kind == "registrations":
        imported = _import_registrations(
            session, source, errors, options=options, actor=actor, policies=policies, now=now
        )
    else:
        imported = _import_violations(
            session, source, errors, options=options, actor=actor, policies=policies, now=now
        )
    report = ImportReport(
        kind=kind,
        file=path.name,
        rows=imported.rows or 0,
        errors=errors.sorted(),
        refused=imported.rows is None,
        existing=imported.existing,
        undecodable=source.undecodable(),
        dry_run=options.dry_run,
    )
    if not report.refused and not options.dry_run:
        _audit(session, report, actor=actor, now=now)
    report.seconds = time.perf_counter() - started
    return report


def _audit(session: Session, report: ImportReport, *, actor: str, now: dt.datetime) -> None:
    """The import's audit row: who (the file), what kind, and how many rows went which way."""
    record_audit(
        session,
        None,
        actor=actor,
        action=f"import.{report.kind}",
        object_type="import",
        object_id=report.file[:100],
        detail={
            "file": report.file,
            "rows": report.rows,
            "skipped": report.skipped,
            "existing": report.existing,
        },
        now=now,
    )
    session.flush()


def _import_institutions(
    session: Session, source: CsvFile, errors: RowErrors, *, options: ImportOptions, now: dt.datetime
) -> Imported:
    checked = check_institutions(
        session, source.records("institutions", errors), errors, skip_existing=options.skip_existing
    )
    good = [row for line, row in checked.rows if line not in errors]
    if errors and not options.skip_bad:
        return Imported(None, len(checked.existing))
    if not options.dry_run:
        write_institutions(session, good, now=now)
    return Imported(len(good), len(checked.existing))


def _import_registrations(
    session: Session,
    source: CsvFile,
    errors: RowErrors,
    *,
    options: ImportOptions,
    actor: str,
    policies: PolicySet,
    now: dt.datetime,
) -> Imported:
    checked = check_registrations(
        session,
        source.records("registrations", errors),
        errors,
        policies=policies,
        skip_existing=options.skip_existing,
        lock=not options.dry_run,
    )
    good = [row for line, row in checked.rows if line not in errors]
    if errors and not options.skip_bad:
        return Imported(None, len(checked.existing))
    if not options.dry_run:
        import_registrations(session, checked, good, actor=actor, policies=policies, now=now)
    return Imported(len(good), len(checked.existing))


def _import_violations(
    session: Session,
    source: CsvFile,
    errors: RowErrors,
    *,
    options: ImportOptions,
    actor: str,
    policies: PolicySet,
    now: dt.datetime,
) -> Imported:
    """A case recorded before with the same content is skipped (`existing`) whether or not the
    caller said --skip-existing: posting it again is a replay the API answers with the original."""
    checked = check_violations(
        session,
        source.records("violations", errors),
        errors,
        policies=policies,
        now=now,
        lock=not options.dry_run,
    )
    if errors and not options.skip_bad:
        return Imported(None, checked.existing)
    if not options.dry_run:
        progress = _writing(source, len(checked.rows))
        savepoint = session.begin_nested()
        try:
            import_violations(
                session, checked, checked.rows, actor=actor, policies=policies, now=now, progress=progress
            )
        except CONFLICTS:
            # a case of the file recorded by the API after the check (it locks the people it
            # scores, not case_refs): the file is refused as for a bad row, naming the lines
            savepoint.rollback()
            meanwhile = recorded_meanwhile(session, checked.rows)
            if not meanwhile:
                raise
            for c in meanwhile:
                errors.add(
                    c.line,
                    f"case_ref {c.cmd.case_ref} was recorded by another writer while this file was "
                    "imported; run the import again (a case stored with the same content is skipped)",
                )
            return Imported(None, checked.existing)
        savepoint.commit()
    return Imported(len(checked.rows), checked.existing)


def _writing(source: CsvFile, rows: int) -> Callable[[int], None] | None:
    """The status line of the write that follows the check: the share of the rows written, told as
    a share of the file, so that the line goes on from 0 % to 100 % a second time."""
    report = source.progress
    if report is None:
        return None
    size = source.path.stat().st_size

    def written(done: int) -> None:
        report("writing", size * done // rows if rows else size, done + 1)

    return written


__all__ = [
    "COLUMNS",
    "KINDS",
    "ImportOptions",
    "ImportRefused",
    "ImportReport",
    "encoding_problem",
    "import_csv",
]
