"""Operability: JSON log lines with the request id, Prometheus metrics, ID redaction."""

from __future__ import annotations

import io
import json
import logging

import structlog
from factories import Api, auth, make_key

from points_service.logs import configure_logging, redact


def test_every_request_is_logged_as_one_json_line_carrying_its_request_id(client, admin, log_stream):
    response = client.get("/v1/policy", headers={**admin.headers, "X-Request-ID": "trace-0042"})
    assert response.headers["X-Request-ID"] == "trace-0042"
    lines = [json.loads(line) for line in log_stream.getvalue().splitlines()]
    [line] = [
        entry for entry in lines if entry.get("event") == "request" and entry.get("path") == "/v1/policy"
    ]
    assert (line["request_id"], line["method"], line["status"], line["level"]) == (
        "trace-0042",
        "GET",
        200,
        "info",
    )
    assert line["client"].startswith("key:") and line["duration_ms"] >= 0
    # the same fields as a stdlib record's line (json_formatter), though structlog renders it
    assert line["logger"] == "points_service.http" and line["timestamp"].endswith("Z")


def test_the_log_level_holds_for_the_services_own_lines_as_for_stdlib_records():
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stream = io.StringIO()
    try:
        configure_logging("warning", stream=stream)
        own = structlog.get_logger("points_service.test")
        own.info("not written")
        own.warning("written", id_number="11010519491231002X")
        logging.getLogger("points_service.test").info("not written either")
        logging.getLogger("points_service.test").warning("written too")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        structlog.reset_defaults()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["event"], line["level"]) for line in lines] == [
        ("written", "warning"),
        ("written too", "warning"),
    ]
    assert lines[0]["id_number"] == "1****************X" and lines[0]["logger"] == "points_service.test"


def test_an_error_body_and_its_log_line_share_the_request_id(client, log_stream):
    response = client.get("/v1/policy")
    body = response.get_json()
    lines = [json.loads(line) for line in log_stream.getvalue().splitlines()]
    [line] = [entry for entry in lines if entry.get("event") == "request"]
    assert (line["status"], line["request_id"]) == (401, body["request_id"])


def test_national_id_shaped_values_are_masked_in_any_log_line(log_stream):
    logging.getLogger("anything").warning("looked up 11010519491231002X and 130102198001011234")
    line = json.loads(log_stream.getvalue().splitlines()[-1])
    assert line["event"] == "looked up 1****************X and 1****************4"
    assert redact("case HB-2026-000123 and 2026-11-23") == "case HB-2026-000123 and 2026-11-23"


def test_metrics_count_requests_per_endpoint_and_report_sanctions_and_the_webhook_backlog(make_app, session):
    client = make_app(metrics_token="scrape-token").test_client()
    admin, inspector = Api(client, make_key(session, "admin")), Api(client, make_key(session, "inspector"))
    person, hospital = admin.person()
    inspector.violation(person, hospital, behaviour_code="B3-01", responsibility="main", decided_on=_today())
    scraped = client.get("/metrics", headers=auth("scrape-token"))
    assert scraped.status_code == 200
    body = scraped.get_data(as_text=True)
    lines = body.splitlines()
    assert any(
        line.startswith('points_http_requests_total{endpoint="/v1/violations",method="POST",status="201"}')
        for line in lines
    )
    assert any(
        line.startswith("points_violations_recorded_total ") and float(line.split()[-1]) >= 1
        for line in lines
    )
    [suspended] = [line for line in lines if line.startswith('points_sanctions_in_force{status="suspended"}')]
    assert float(suspended.split()[-1]) >= 1
    assert any(line.startswith("points_webhook_backlog ") for line in lines)
    assert 'endpoint="/v1/violations"' in body and "points_http_request_duration_seconds_bucket" in body


def _today() -> str:
    from points_service.clock import local_today

    return local_today().isoformat()
