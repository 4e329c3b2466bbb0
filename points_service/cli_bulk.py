"""`points-service import` and `points-service demo seed`: bulk data from CSV files, and demo data."""

from __future__ import annotations

import time
from pathlib import Path

import click

from .services.bulk import KINDS

IMPORT_HELP = """Import a CSV file (UTF-8, header row) of KIND: institutions, practitioners or registrations.

\b
Columns:
  institutions   code,name,kind,region_code
  practitioners  code,name,id_number,category
  registrations  practitioner_code,institution_code,start_date[,end_date]

Every row is checked first; bad rows are reported on stderr as "line N: message" (the header is
line 1). A file with bad rows imports nothing (exit 1) unless --skip-bad is given, which imports
the good rows and reports the bad ones (exit 0). A file is imported in one transaction.
"""


@click.command("import", help=IMPORT_HELP)
@click.argument("kind", type=click.Choice(KINDS))
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))
@click.option("--skip-bad", is_flag=True, help="import the good rows and report the bad ones")
def import_(kind: str, file: Path, skip_bad: bool) -> None:
    from . import cli
    from .clock import utc_now
    from .persistence.engine import transaction
    from .services.bulk import ImportRefused, import_csv

    settings = cli._settings()
    try:
        with cli._runtime(settings) as (sessions, keys), transaction(sessions, write=True) as session:
            report = import_csv(
                session,
                kind,
                file,
                keys=keys,
                policies=settings.policies,
                now=utc_now(),
                skip_bad=skip_bad,
            )
    except ImportRefused as exc:
        click.echo(f"{file.name}: {exc}", err=True)
        click.echo(f"{file.name}: nothing imported", err=True)
        raise SystemExit(1) from None
    for line, message in report.errors:
        click.echo(f"line {line}: {message}", err=True)
    if report.refused:
        click.echo(
            f"{file.name}: {len(report.errors)} bad row(s); nothing imported "
            "(--skip-bad imports the good rows)",
            err=True,
        )
        raise SystemExit(1)
    click.echo(f"imported {report.rows} {kind} from {file.name} in {report.seconds:.1f} s")
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
