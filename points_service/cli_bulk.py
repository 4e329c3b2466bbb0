"""`points-service import` and `points-service demo seed`: bulk data from CSV files, and demo data."""

from __future__ import annotations

import codecs
import sys
import time
from pathlib import Path

import click

from .services.bulk import KINDS

IMPORT_HELP = """Import a CSV file (header row; UTF-8 unless --encoding) of KIND: institutions,
practitioners or registrations.

\b
Columns:
  institutions   code,name,kind,region_code
  practitioners  code,name,id_number,category
  registrations  practitioner_code,institution_code,start_date[,end_date]

Every row is checked first; bad rows are reported on stderr as "line N: message" (the header is
line 1), never with a national ID in clear. A file with bad rows imports nothing (exit 1) unless
--skip-bad is given, which imports the good rows and reports the bad ones (exit 0). A file is
imported in one transaction, read as it goes rather than whole; on a terminal a status line shows
rows/s and the time left. The last line sums up what happened.

Run it again safely with --skip-existing: rows equal to what is stored are skipped, rows that
differ from it are bad rows. --dry-run checks everything and writes nothing.
"""


def _encoding(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from .services.bulk import encoding_problem

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
@click.argument("kind", type=click.Choice(KINDS))
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
    from . import cli
    from .clock import utc_now
    from .persistence.engine import transaction
    from .services.bulk import ImportOptions, ImportRefused, import_csv

    settings = cli._settings()
    status = _StatusLine(file.name, file.stat().st_size) if sys.stderr.isatty() else None
    options = ImportOptions(
        skip_bad=skip_bad, skip_existing=skip_existing, dry_run=dry_run, encoding=encoding, progress=status
    )
    try:
        with cli._runtime(settings) as (sessions, keys), transaction(sessions, write=not dry_run) as session:
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
    for line, message in report.errors:
        click.echo(f"line {line}: {message}", err=True)
    if report.undecodable and codecs.lookup(encoding).name == "utf-8":
        click.echo(
            f"{file.name}: {report.undecodable} line(s) not UTF-8; if the file is GBK, pass --encoding gbk",
            err=True,
        )
    existing = f"; {report.existing} already there, skipped" if report.existing else ""
    if report.refused:
        click.echo(
            f"{file.name}: {len(report.errors)} bad row(s){existing}; nothing "
            f"{'would be ' if dry_run else ''}imported (--skip-bad imports the good rows)",
            err=True,
        )
        raise SystemExit(1)
    rate = f", {report.rows / report.seconds:,.0f} rows/s" if report.seconds > 0 and report.rows else ""
    if dry_run:
        click.echo(
            f"dry run: {report.rows} {kind} from {file.name} would be imported{existing}; "
            f"checked in {report.seconds:.1f} s; nothing was written"
        )
    else:
        took = f"{report.seconds:.1f} s{rate}"
        click.echo(f"imported {report.rows} {kind} from {file.name} in {took}{existing}")
    if report.skipped:
        click.echo(f"skipped {report.skipped} bad row(s)")


@click.group()
def demo() -> None:
    """Demo and benchmark data."""


@demo.command("seed")
@click.option("--practitioners", "n", type=click.IntRange(min=1), required=True, help="how many people")
@click.option("--violations", "m", type=click.IntRange(min=0), required=True, help="how many decisions")
@click.option("--institutions", "k", type=click.IntRange(min=1), default=None, help="default: max(10, N/500)")
@click.option("--seed", type=int, default=1, show_default=True, help="random seed; also names the codes")
def demo_seed(n: int, m: int, k: int | None, seed: int) -> None:
    """Generate realistic data: institutions across provinces, practitioners with multi-site
    registrations, and decisions over the previous and the current year with a realistic spread of
    points, so that some people have measures, suspensions and a few terminations."""
    from . import cli
    from .clock import utc_now
    from .persistence.engine import transaction
    from .services.bulk import seed_demo

    settings = cli._settings()
    started = time.perf_counter()
    try:
        with cli._runtime(settings) as (sessions, keys), transaction(sessions, write=True) as session:
            summary = seed_demo(
                session,
                practitioners=n,
                violations=m,
                institutions=k,
                seed=seed,
                keys=keys,
                policies=settings.policies,
                now=utc_now(),
                progress=lambda message: click.echo(f"  {message}", err=True),
            )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    elapsed = time.perf_counter() - started
    status = ", ".join(f"{count} {name}" for name, count in sorted(summary.status.items()))
    click.echo(
        f"seeded {summary.institutions} institutions, {summary.practitioners} practitioners, "
        f"{summary.registrations} registrations ({summary.multi_site} multi-site), "
        f"{summary.violations} decisions, {summary.measures} measures in {elapsed:.1f} s"
    )
    click.echo(
        f"today: {status}; {summary.people_suspended_ever} people suspended at some time, "
        f"{summary.people_terminated} terminated"
    )
    click.echo(
        "\nTo use the API, create keys (each is printed once):\n"
        "  points-service keys create --role admin --name demo-admin\n"
        f"  points-service keys create --role hr_system --institution {summary.example_institution}\n"
        f"  points-service keys create --role practitioner --practitioner {summary.example_practitioner}"
    )
