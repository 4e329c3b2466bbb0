"""Who may read the metrics: with POINTS_METRICS_TOKEN, /metrics needs it as a bearer token; with
POINTS_METRICS_PORT, the gunicorn master serves them on that port and the API port answers 404;
with neither, /metrics is a 404 (docs/operations.md)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from factories import assert_problem as _problem
from factories import auth
from prometheus_client import CONTENT_TYPE_LATEST

TOKEN = "scrape-" + "x" * 24


def test_without_a_token_or_a_port_metrics_are_not_served(client, admin_key):
    _problem(client.get("/metrics"), 404, "not-found")
    _problem(client.get("/metrics", headers=auth(admin_key)), 404, "not-found")


def test_with_a_token_metrics_need_it(make_app, admin_key):
    client = make_app(metrics_token=TOKEN).test_client()
    missing = client.get("/metrics")
    _problem(missing, 401, "not-authenticated")
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="points-service"'
    for wrong in (admin_key, TOKEN[:-1], TOKEN + "x"):
        refused = client.get("/metrics", headers=auth(wrong))
        _problem(refused, 401, "not-authenticated")
        assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
    scraped = client.get("/metrics", headers=auth(TOKEN))
    assert scraped.status_code == 200
    assert scraped.headers["Content-Type"] == CONTENT_TYPE_LATEST
    assert scraped.headers["Content-Type"].count("charset") == 1
    assert "points_webhook_backlog" in scraped.get_data(as_text=True)


def test_a_guessed_metrics_token_counts_against_the_address_like_a_guessed_key(make_app):
    client = make_app(metrics_token=TOKEN, rate_limit="1000 per minute", auth_failure_limit="2 per minute")
    client = client.test_client()
    assert [client.get("/metrics", headers=auth(f"guess-{i}")).status_code for i in range(2)] == [401, 401]
    _problem(client.get("/metrics", headers=auth("guess-3")), 429, "rate-limited")


def test_with_a_metrics_port_the_api_port_answers_404_even_with_the_token(make_app):
    client = make_app(metrics_token=TOKEN, metrics_port=9464).test_client()
    _problem(client.get("/metrics", headers=auth(TOKEN)), 404, "not-found")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.fixture
def gunicorn_with_a_metrics_port(engine, database_url, tmp_path):
    """A real gunicorn (one worker) on loopback, its master serving metrics on a port of its own."""
    api_port, metrics_port = _free_port(), _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("POINTS_")},
        "POINTS_DATABASE_URL": database_url,
        "POINTS_METRICS_PORT": str(metrics_port),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "POINTS_WEB_WORKERS": "1",
        "POINTS_RATE_LIMIT": "",
    }
    gunicorn = Path(sys.executable).with_name("gunicorn")
    process = subprocess.Popen(
        [str(gunicorn), "-c", "python:points_service.gunicorn_conf", "--bind", f"127.0.0.1:{api_port}"]
        + ["points_service.wsgi:app"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if _get(f"http://127.0.0.1:{api_port}/health/live")[0] == 200:
                    break
            except OSError:
                pass
            assert process.poll() is None, "gunicorn exited"
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.1)
        yield f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{metrics_port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_with_a_metrics_port_the_master_serves_every_workers_counters_and_the_gauges(
    gunicorn_with_a_metrics_port,
):
    api, metrics = gunicorn_with_a_metrics_port
    assert _get(f"{api}/health/live")[0] == 200
    status, body = _get(f"{metrics}/metrics")
    assert status == 200
    assert 'points_http_requests_total{endpoint="/health/live",method="GET",status="200"}' in body
    assert "points_webhook_backlog " in body and "points_webhook_oldest_pending_seconds " in body
    assert _get(f"{api}/metrics")[0] == 404
