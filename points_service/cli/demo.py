"""`points-service demo seed`: realistic data for demos and the benchmark."""

from __future__ import annotations

import time

import click

from ._runtime import load_settings, runtime


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
    from ..clock import utc_now
    from ..demo import seed_demo
    from ..persistence.engine import transaction

    settings = load_settings()
    started = time.perf_counter()
    try:
        with runtime(settings) as (sessions, keys), transaction(sessions, write=True) as session:
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
