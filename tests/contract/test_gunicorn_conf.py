"""The gunicorn settings module: what the server process does beyond gunicorn's defaults."""

from __future__ import annotations

import gc
import importlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import weakref
from pathlib import Path

import pytest
from gunicorn.config import Config

from points_service import gunicorn_conf


@pytest.fixture
def unfrozen():
    yield
    gc.unfreeze()


def test_a_worker_freezes_its_loaded_objects_out_of_the_collector(unfrozen):
    gc.unfreeze()
    kept = object(), [object()]  # a long-lived container, as the loaded app's objects are
    assert gc.is_tracked(kept)
    assert any(obj is kept for obj in gc.get_objects())

    gunicorn_conf.post_worker_init(worker=None)

    assert gc.get_freeze_count() > 0
    # a full collection no longer walks it
    assert not any(obj is kept for obj in gc.get_objects())


def test_a_request_after_the_freeze_still_has_its_garbage_collected(unfrozen):
    gunicorn_conf.post_worker_init(worker=None)

    class Node:
        pass

    node = Node()
    node.self = node  # a cycle: only the collector can free it
    probe = weakref.ref(node)
    del node

    gc.collect()

    assert probe() is None


@pytest.fixture
def configured(monkeypatch):
    """Load the settings module under an environment; afterwards, load it again as it was."""

    def load(**env: str):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return importlib.reload(gunicorn_conf)

    yield load
    monkeypatch.undo()
    importlib.reload(gunicorn_conf)


@pytest.mark.parametrize("raw", ["0", "-2", "four"])
def test_web_workers_must_be_a_positive_integer(configured, raw):
    with pytest.raises(ValueError, match="POINTS_WEB_WORKERS must be a positive integer"):
        configured(POINTS_WEB_WORKERS=raw)


def test_by_default_a_worker_serves_each_usable_core_and_at_most_eight(configured, monkeypatch):
    monkeypatch.delenv("POINTS_WEB_WORKERS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(3)))
    assert (configured().workers, configured().threads) == (3, 4)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(32)))
    assert configured().workers == 8


def test_workers_and_threads_come_from_the_environment(configured):
    conf = configured(POINTS_WEB_WORKERS="3", POINTS_WEB_THREADS="5")
    assert (conf.workers, conf.threads) == (3, 5)


# -- logs, the server's own folder, the control socket ---------------------------------------------


def test_gunicorn_logs_its_own_messages_through_the_json_formatter(configured):
    conf = configured(POINTS_LOG_LEVEL="debug")
    config = conf.logconfig_dict
    handlers = {config["loggers"][name]["handlers"][0] for name in ("gunicorn.error", "gunicorn.access")}
    (handler,) = handlers
    formatter = config["formatters"][config["handlers"][handler]["formatter"]]
    assert formatter == {"()": "points_service.logs.json_formatter"}
    assert config["loggers"]["gunicorn.error"]["level"] == "DEBUG"
    assert config["loggers"]["gunicorn.error"]["propagate"] is False  # one line, not two

    from points_service.logs import json_formatter

    record = logging.LogRecord("gunicorn.error", logging.INFO, __file__, 1, "Booting worker: %s", (7,), None)
    line = json.loads(json_formatter().format(record))
    assert line["event"] == "Booting worker: 7"
    assert (line["logger"], line["level"]) == ("gunicorn.error", "info") and "timestamp" in line


def test_gunicorn_builds_no_access_line_unless_the_operator_asks_for_one(configured):
    conf = configured()
    cfg = Config()
    cfg.set("logconfig_dict", conf.logconfig_dict)
    cfg.set("logger_class", conf.logger_class)
    # the logger as gunicorn makes it, without the setup that would configure this process's logging
    logger = object.__new__(cfg.logger_class)
    logger.cfg = cfg

    class Untouchable:
        def __getattr__(self, name):
            raise AssertionError(f"an access line was built from the response ({name})")

    logger.access(Untouchable(), Untouchable(), {}, 0.001)
    cfg.set("accesslog", "-")
    assert logger.access_log_enabled


class _Server:
    """What the hooks use of gunicorn's arbiter: its real settings object and a logger."""

    def __init__(self, **settings):
        self.cfg = Config()
        for name, value in settings.items():
            self.cfg.set(name, value)
        self.warnings: list[str] = []
        self.log = self

    def warning(self, message, *args):
        self.warnings.append(message % args)


@pytest.fixture
def tmp_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    return tmp_path


def test_each_server_gets_its_own_folder_for_metrics_and_control_socket_and_removes_it(configured, tmp_dir):
    first, second = _Server(), _Server()
    conf = configured()
    conf.when_ready(first)
    folder = Path(first.cfg.control_socket).parent
    assert folder.parent == tmp_dir and folder.name.startswith(f"points-server-{os.getpid()}-")
    assert Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]) == folder / "metrics"
    assert (folder / "metrics").is_dir()
    del os.environ["PROMETHEUS_MULTIPROC_DIR"]
    conf = configured()
    conf.when_ready(second)
    assert Path(second.cfg.control_socket).parent != folder
    conf.on_exit(second)
    assert not Path(second.cfg.control_socket).parent.exists()


def test_a_control_socket_the_operator_chose_is_kept(configured, tmp_dir):
    server = _Server(control_socket=str(tmp_dir / "mine.ctl"))
    configured().when_ready(server)
    assert server.cfg.control_socket == str(tmp_dir / "mine.ctl")


def test_a_metrics_folder_the_operator_chose_is_emptied_and_kept(configured, tmp_dir, monkeypatch):
    mine = tmp_dir / "metrics"
    mine.mkdir()
    (mine / "counter_123.db").write_bytes(b"old")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(mine))
    conf = configured()
    server = _Server()
    conf.when_ready(server)
    assert list(mine.iterdir()) == []
    conf.on_exit(server)
    assert mine.is_dir()


def test_the_folder_of_a_killed_server_is_removed_by_the_next_one(configured, tmp_dir):
    with subprocess.Popen(["true"]) as gone:  # a pid that has exited
        gone.wait()
    abandoned = tmp_dir / f"points-server-{gone.pid}-abc"
    abandoned.mkdir()
    living = tmp_dir / f"points-server-{os.getpid()}-def"
    living.mkdir()
    configured().when_ready(_Server())
    assert not abandoned.exists() and living.exists()


@pytest.mark.parametrize(
    ("workers", "env", "warned"),
    [
        (4, {}, True),
        (1, {}, False),
        (4, {"POINTS_REDIS_URL": "redis://127.0.0.1:6379/0"}, False),
        (4, {"POINTS_RATE_LIMIT": ""}, False),
    ],
)
def test_several_workers_without_redis_log_one_warning_about_the_rate_limit(
    configured, tmp_dir, monkeypatch, workers, env, warned
):
    monkeypatch.delenv("POINTS_REDIS_URL", raising=False)
    monkeypatch.delenv("POINTS_RATE_LIMIT", raising=False)
    server = _Server(workers=workers)
    configured(**env).when_ready(server)
    assert len(server.warnings) == int(warned)
    if warned:
        assert "POINTS_REDIS_URL" in server.warnings[0] and "4 workers" in server.warnings[0]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_real_gunicorn_logs_json_uses_its_own_folder_and_leaves_nothing_behind(tmp_path):
    from points_service.persistence.schema import upgrade_database

    url = f"sqlite:///{tmp_path / 'points.db'}"
    upgrade_database(url)
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("POINTS_")},
        "POINTS_DATABASE_URL": url,
        "TMPDIR": str(tmp_path),
        "HOME": "/nonexistent",  # like the image's user: gunicorn's default socket place is unwritable
        "POINTS_WEB_WORKERS": "2",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.pop("XDG_RUNTIME_DIR", None)
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    argv = [gunicorn, "-c", "python:points_service.gunicorn_conf", "--bind", f"127.0.0.1:{port}"]
    server = subprocess.Popen(
        [*argv, "points_service.wsgi:app"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=1) as answer:
                    assert answer.status == 200
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError("gunicorn did not answer")
        (folder,) = tmp_path.glob(f"points-server-{server.pid}-*")
        assert (folder / "gunicorn.ctl").is_socket() and (folder / "metrics").is_dir()
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=30)
    assert server.returncode == 0, output
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]  # every line is JSON
    gunicorn_lines = [line["event"] for line in lines if line["logger"] == "gunicorn.error"]
    assert any(e.startswith("Starting gunicorn") for e in gunicorn_lines)
    assert any("Control socket listening at " + str(folder) in e for e in gunicorn_lines)
    assert not any("Failed to start control socket" in e for e in gunicorn_lines)
    assert any("2 workers without POINTS_REDIS_URL" in e for e in gunicorn_lines)
    assert not list(tmp_path.glob("points-server-*"))
