"""`points-service import`: institutions, practitioners, registrations and decisions from CSV files."""

from __future__ import annotations

import codecs
import contextlib
import gc
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import click

from ..services.imports import KINDS, ImportOptions, ImportRefused, ImportReport, encoding_problem, import_csv
from ._runtime import load_settings, runtime

IMPORT_HELP = """Import a CSV file (header row; UTF-8 unless --encoding) of KIND: institutions,
practitioners, registrations or violations (scoring decisions).

\b
Columns:
  institutions   code,name,kind,region_code
  practitioners  code,name,id_number,category
  registrations  practitioner_code,institution_code,start_date[,end_date]
  violations     case_ref,practitioner_code,institution_code,behaviour_code,
                 responsibility,occurred_on,decided_on
                 [,points,adjustment,adjustment_reason,description]

A decision is checked as POST /v1/violations checks it. A case_ref recorded before with the same
content is skipped; with other content it is a bad row. The people a file scores are recomputed
once at the end: their measures and sanctions are those of the decisions posted in decision order,
and the feed says each decision and each person's eligibility as it changed today.

Every row is checked first; bad rows are reported on stderr as "line N: message" (the header is
line 1), never with a national ID in clear. A file with bad rows imports nothing (exit 1) unless
--skip-bad is given, which imports the good rows and reports the bad ones (exit 0). A file is
imported in one transaction, read as it goes rather than whole; on a terminal a status line shows
rows/s and the time left. The last line sums up what happened.

Run it again safely with --skip-existing: rows equal to what is stored are skipped, rows that
differ from it are bad rows. --dry-run checks everything and writes nothing.
"""


def _encoding(ctx: click.Context, param: click.Parameter, value: str) -> str:
    problem = encoding_problem(value)
    if problem:
        raise click.BadParameter(problem, ctx=ctx, param=param)
    return value


def progress_line(phase: str, done: int, total: int, rows: int, seconds: float) -> str:
    """The status line of a long import: how far, how fast, how long still."""
    share = done / total if total else 1.0
    rate = rows / seconds if seconds > 0 else 0.0
    left = (total - done) * seconds / done if done else 0.0
    minutes, secs = divmod(round(left), 60)
    return f"{phase} {share:4.0%}  {rows:,} rows  {rate:,.0f} rows/s  {minutes}:{secs:02d} left"


class _StatusLine:
    """A line on stderr rewritten in place, at most five times a second; only on a terminal."""

    def __init__(self, label: str, total: int):
        self.stream = sys.stderr
        self.label, self.total = label, total
        self.phase, self.started, self.shown, self.width = "", 0.0, 0.0, 0

    def __call__(self, phase: str, done: int, lines: int) -> None:
        now = time.monotonic()
        if phase != self.phase:  # a pass starts: its rate is measured from here
            self.phase, self.started, self.shown = phase, now, now
        if now - self.shown < 0.2 and done < self.total:
            return
        self.shown = now
        line = progress_line(phase, done, self.total, max(lines - 1, 0), now - self.started)
        text = f"{self.label}: {line}"
        self.stream.write("\r" + text.ljust(self.width))
        self.stream.flush()
        self.width = len(text)

    def close(self) -> None:
        if self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()


@click.command("import", help=IMPORT_HELP)
@click.argument("kind", type=click.Choice(KINDS), metavar="KIND")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))
@click.option("--skip-bad", is_flag=True, help="import the good rows and report the bad ones")
@click.option("--skip-existing", is_flag=True, help="skip rows equal to what is stored (a rerun is a no-op)")
@click.option("--dry-run", is_flag=True, help="check every row against the database; write nothing")
@click.option(
    "--encoding",
    default="utf-8",
    show_default=True,
    callback=_encoding,
    help="of the file, e.g. gbk or gb18030 for exports of many Chinese hospital systems",
)
def import_(kind: str, file: Path, skip_bad: bool, skip_existing: bool, dry_run: bool, encoding: str) -> None:
    from ..clock import utc_now
    from ..persistence.engine import transaction

    settings = load_settings()
    status = _StatusLine(file.name, file.stat().st_size) if sys.stderr.isatty() else None
    options = ImportOptions(
        skip_bad=skip_bad, skip_existing=skip_existing, dry_run=dry_run, encoding=encoding, progress=status
    )
    try:
        with (
            runtime(settings) as (sessions, keys),
            transaction(sessions, write=not dry_run) as session,
            _collector_paused(),
        ):
            report = import_csv(
                session, kind, file, keys=keys, policies=settings.policies, now=utc_now(), options=options
            )
    except ImportRefused as exc:
        click.echo(f"{file.name}: {exc}", err=True)
        click.echo(f"{file.name}: nothing imported", err=True)
        raise SystemExit(1) from None
    finally:
        if status is not None:
            status.close()
    _tell(report, encoding)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for the import.

    A file of 200,000 rows makes millions of small objects that live until the import ends (each
    person's registrations and state, the rows checked); the collector would walk them all again
    each time the next chunk's short-lived objects push its counters over. Reference counting
    still frees everything the import drops, and the collector catches up when it is over. This
    took a registrations import of 200,000 rows from about 34 to about 23 s of CPU (docs/decisions.md).
    """
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _tell(report: ImportReport, encoding: str) -> None:
    """Every bad row on stderr, one a line, then what came of the file; exit 1 when refused."""
    for line, message in report.errors:
        click.echo(f"line {line}: {message}", err=True)
    if report.undecodable and codecs.lookup(encoding).name == "utf-8":
        click.echo(
            f"{report.file}: {report.undecodable} line(s) not UTF-8; if the file is GBK, pass --encoding gbk",
            err=True,
        )
    existing = f"; {report.existing} already there, skipped" if report.existing else ""
    if report.refused:
        click.echo(
            f"{report.file}: {len(report.errors)} bad row(s){existing}; nothing "
            f"{'would be ' if report.dry_run else ''}imported (--skip-bad imports the good rows)",
            err=True,
        )
        raise SystemExit(1)
    rate = f", {report.rows / report.seconds:,.0f} rows/s" if report.seconds > 0 and report.rows else ""
    if report.dry_run:
        click.echo(
            f"dry run: {report.rows} {report.kind} from {report.file} would be imported{existing}; "
            f"checked in {report.seconds:.1f} s; nothing was written"
        )
    else:
        took = f"{report.seconds:.1f} s{rate}"
        click.echo(f"imported {report.rows} {report.kind} from {report.file} in {took}{existing}")
    if report.skipped:
        click.echo(f"skipped {report.skipped} bad row(s)")
