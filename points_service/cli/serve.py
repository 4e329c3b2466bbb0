"""`points-service run` (the quick start) and `points-service serve` (production)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click

from ..settings import Settings
from ._runtime import describe_database, load_settings, migrate, program, refuse, runtime


@click.command("run")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="default: $PORT, else 8000")
def run(host: str, port: int | None) -> None:
    """Quick start: migrate, print an admin key on first start, serve on HOST:PORT and run the
    scheduler beside it; Ctrl-C stops both. The development keys are allowed (with a warning)."""
    settings = load_settings()
    port = port or settings.port
    _require_free_port(host, port, how="stop what uses it, or choose another, e.g. PORT=8001 make run")
    _require_keys(settings, allowed=True, command="run")
    migrate(settings.database_url)
    with runtime(settings) as (sessions, _):
        _ensure_admin_key(sessions)
    database = describe_database(settings.database_url)
    click.echo(f"serving on http://{host}:{port} (database {database})", err=True)
    processes = [
        subprocess.Popen(
            _gunicorn_argv(f"{host}:{port}", "--workers", os.environ.get("POINTS_WEB_WORKERS", "2"))
        ),
        subprocess.Popen([sys.executable, "-m", "points_service", "scheduler", "run"]),
    ]
    codes = _supervise(processes)
    if any(c not in (0, -signal.SIGTERM, -signal.SIGINT) for c in codes):
        raise SystemExit(1)


def _supervise(processes: list[subprocess.Popen]) -> list[int]:
    """Wait until one of the processes ends or the operator stops them; stop the others; their exit codes."""

    def stop(*_: object) -> None:
        for process in processes:
            if process.poll() is None:
                process.terminate()

    signal.signal(signal.SIGTERM, stop)
    try:
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stop()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
    return [p.returncode for p in processes]


@click.command("serve")
def serve() -> None:
    """Production entry point: check the settings and keys, migrate, then exec gunicorn (gunicorn_conf).

    Refuses the public development keys unless POINTS_ALLOW_DEV_KEYS=1.
    """
    settings = load_settings()
    _require_keys(settings, allowed=settings.allow_dev_keys, command="serve")
    _require_free_port("0.0.0.0", settings.port, how="set PORT to a free port")
    migrate(settings.database_url)
    with runtime(settings):
        pass  # refuses an index key the database does not know
    argv = _gunicorn_argv(f"0.0.0.0:{settings.port}")
    os.execv(argv[0], argv)


def _ensure_admin_key(sessions: Any) -> None:
    from ..clock import utc_now
    from ..persistence.engine import transaction
    from ..services.keys import CreateKey, create_key, has_admin_key

    with transaction(sessions, write=True) as session:
        if has_admin_key(session):
            secret = None
        else:
            _, secret = create_key(session, CreateKey(role="admin", name="first-start admin"), now=utc_now())
    if secret is None:
        click.echo(
            "An admin API key exists (it was shown once, on the first start). For another: "
            f"{program()} keys create --role admin --name YOUR-NAME",
            err=True,
        )
        return
    click.echo("\n  First start: an admin API key was created. It is shown only now:\n", err=True)
    click.echo(f"  POINTS_ADMIN_KEY={secret}\n", err=True)


def _require_free_port(host: str, port: int, *, how: str) -> None:
    """Stop before anything starts when the port is taken, rather than after the server gave up."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # as gunicorn binds: a port left in TIME_WAIT by a stopped server is free
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            refuse(f"PORT {port} on {host} is not free ({exc.strerror}); {how}")


def _require_keys(settings: Settings, *, allowed: bool, command: str) -> None:
    """The public development keys: refused by `serve` unless allowed, always said out loud."""
    dev = settings.development_keys()
    if not dev:
        return
    names = " and ".join(dev)
    if not allowed:
        refuse(
            f"{command} refuses the public development keys: set {names} (`{program()} pii generate-key` "
            "makes one), or POINTS_ALLOW_DEV_KEYS=1 for a trial that keeps no real data"
        )
    click.echo(f"Warning: {names} are the public development keys: keep no real data here", err=True)


def _gunicorn_argv(bind: str, *extra: str) -> list[str]:
    gunicorn = shutil.which("gunicorn") or str(Path(sys.executable).with_name("gunicorn"))
    return [
        gunicorn,
        "-c",
        "python:points_service.gunicorn_conf",
        "--bind",
        bind,
        *extra,
        "points_service.wsgi:app",
    ]
