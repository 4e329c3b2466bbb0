"""Gunicorn settings, loaded with ``gunicorn -c python:points_service.gunicorn_conf``.

This is the one module that reads ``os.environ`` directly instead of going through the
application settings: gunicorn imports it before (and independently of) the Flask app,
and these values describe the server process, not the application.
"""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
from pathlib import Path

from gunicorn import glogging

_MAX_DEFAULT_WORKERS = 8


def _positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a positive integer, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value}")
    return value


def _available_cores() -> int:
    # sched_getaffinity honours cpusets (docker --cpuset-cpus); os.cpu_count() would report
    # every host core. CPU quotas (--cpus) are invisible to both, hence the explicit env knob.
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


bind = f"0.0.0.0:{_positive_int('PORT', 8000)}"

# Threads rather than sync workers: measured on 2 cores, sync × 2, × 3, × 5 and this layout served
# the same within noise (bench/README.md), and threads keep a slow client or a slow report from
# holding a whole process, sharing one connection pool per process instead of multiplying them.
worker_class = "gthread"
# One process a core: on 2 cores 2 x 4 served 11-36% more eligibility reads than 4 x 4 in the
# same minutes (2026-12-04, docs/operations.md); more processes than cores only contend for them.
# Capped by default because each worker holds its own pool; beyond ~8 the database, not
# CPU, is the bottleneck. Set POINTS_WEB_WORKERS explicitly to go higher.
workers = _positive_int("POINTS_WEB_WORKERS", min(_available_cores(), _MAX_DEFAULT_WORKERS))
threads = _positive_int("POINTS_WEB_THREADS", 4)

timeout = 30
graceful_timeout = 30

# Recycle workers now and then to bound slow leaks; jitter keeps them from restarting together.
# Not often: a worker's start costs about 2 s of CPU (imports, the app), which every 10,000 requests
# was 0.2 ms a request, and the clients of the worker it replaces reconnect to the others and stay
# there. A worker's resident size is flat over 100,000 requests (make bench's memory measure).
max_requests = 100_000
max_requests_jitter = 10_000

# The worker heartbeat file is touched constantly; on overlay/disk filesystems that can
# stall workers into false timeouts, so use tmpfs when the container provides it.
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"

# Only trust X-Forwarded-* from the local reverse proxy unless told otherwise, so clients
# cannot spoof their address or scheme.
forwarded_allow_ips = os.environ.get("POINTS_FORWARDED_ALLOW_IPS", "127.0.0.1")

# The app logs every request itself as a JSON line with its request id (points_service.logs);
# gunicorn's own access log would be a second, unstructured copy.
accesslog = None
errorlog = "-"


class Logger(glogging.Logger):
    """gunicorn's logger, building an access line only when the operator asks for one (`accesslog`,
    `--access-logfile`). gunicorn builds one for every request whenever a logging config is given,
    as `logconfig_dict` below is, and drops it at the WARNING level set there: the building alone
    was a thirtieth of an eligibility GET's CPU."""

    @property
    def access_log_enabled(self) -> bool:
        return bool(self.cfg.accesslog)


logger_class = Logger

# gunicorn's own messages (start, workers booting and dying, signals) are JSON lines on stdout
# like the app's: its loggers get the same formatter instead of gunicorn's plain text.
_LEVEL = os.environ.get("POINTS_LOG_LEVEL", "INFO").upper()
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "points_service.logs.json_formatter"}},
    "handlers": {
        "json": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"},
    },
    "root": {"level": _LEVEL, "handlers": ["json"]},
    "loggers": {
        "gunicorn.error": {"level": _LEVEL, "handlers": ["json"], "propagate": False},
        # a logging config turns gunicorn's access log on whatever `accesslog` says; the app's own
        # request line (with the request id) is the access log, so gunicorn's copy stays silent
        "gunicorn.access": {"level": "WARNING", "handlers": ["json"], "propagate": False},
    },
}

# Each server's own folder under the temp dir, holding its metric files (unless
# PROMETHEUS_MULTIPROC_DIR names one) and its control socket; removed when the server exits.
SERVER_DIR_PREFIX = "points-server-"
_server_dir: Path | None = None


def when_ready(server) -> None:
    """After the listening socket is bound, before any worker starts: the server's own folder.

    Created here rather than at start-up so that a server that cannot bind leaves nothing behind.
    gunicorn's default control socket is one path per user ($XDG_RUNTIME_DIR or ~/.gunicorn), shared
    by every server of that user and unwritable for a user without a home; each server gets its own.
    """
    global _server_dir
    _remove_abandoned_server_dirs()
    _server_dir = Path(tempfile.mkdtemp(prefix=f"{SERVER_DIR_PREFIX}{os.getpid()}-"))
    metrics = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if metrics:
        for leftover in Path(metrics).glob("*.db"):  # a previous server's counts are not ours
            leftover.unlink()
    else:
        (_server_dir / "metrics").mkdir()
        # set before the workers fork, so that they import prometheus_client in multiprocess mode
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_server_dir / "metrics")
    control = server.cfg.settings["control_socket"]
    if control.value == control.default:
        server.cfg.set("control_socket", str(_server_dir / "gunicorn.ctl"))
    _warn_about_rate_limit_per_worker(server)
    # after the metrics folder is set: the master reads every worker's files from it
    _serve_metrics_port()


def on_exit(server) -> None:  # noqa: ARG001
    """The server's folder goes with it (metric files and control socket)."""
    if _server_dir is not None:
        shutil.rmtree(_server_dir, ignore_errors=True)


def _remove_abandoned_server_dirs() -> None:
    """Folders of servers that were killed (SIGKILL, OOM) and so never ran on_exit."""
    for folder in Path(tempfile.gettempdir()).glob(f"{SERVER_DIR_PREFIX}*-*"):
        pid = folder.name.removeprefix(SERVER_DIR_PREFIX).split("-", 1)[0]
        if not pid.isdigit() or folder.stat().st_uid != os.getuid() or _alive(int(pid)):
            continue
        shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    return True


def _warn_about_rate_limit_per_worker(server) -> None:
    limited = os.environ.get("POINTS_RATE_LIMIT") != ""  # unset means the default limit
    if server.cfg.workers > 1 and limited and not os.environ.get("POINTS_REDIS_URL"):
        server.log.warning(
            "%d workers without POINTS_REDIS_URL: each worker counts the per-key rate limit on its own, "
            "so a key can make up to %d times POINTS_RATE_LIMIT; set POINTS_REDIS_URL to share the counts",
            server.cfg.workers,
            server.cfg.workers,
        )


def post_worker_init(worker) -> None:  # noqa: ARG001
    """Freeze the loaded app's objects out of the cyclic garbage collector.

    A worker holds about 130,000 long-lived objects once the app is loaded (SQLAlchemy mappers,
    marshmallow schemas, the routing map). A full collection walks all of them: in process it
    paused a worker for 80-140 ms once in every 15,000-30,000 requests, stalling every keep-alive
    connection that worker holds. Frozen, they are never walked again; they are never garbage.
    """
    gc.collect()
    gc.freeze()


def child_exit(server, worker) -> None:  # noqa: ARG001
    """A dead worker's metric files must stop counting as live (prometheus_client multiprocess)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def _serve_metrics_port() -> None:
    """With POINTS_METRICS_PORT set, this master process serves /metrics on that port.

    Apart from the API workers, a scrape still answers while every worker is busy, and the port
    can be opened to the monitoring network alone; the API port then answers /metrics with 404.
    """
    if os.environ.get("POINTS_METRICS_PORT", "").strip():
        from points_service.metrics import serve_metrics_port
        from points_service.settings import Settings

        settings = Settings.from_env()
        if settings.metrics_port is not None:
            serve_metrics_port(settings.metrics_port, settings.database_url)
