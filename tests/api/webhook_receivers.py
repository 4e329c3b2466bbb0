"""A local webhook receiver on 127.0.0.1 and the fixtures that use it: `receivers` starts them,
`local` allows loopback URLs (settings.webhook_allow_private), `dispatch` runs the dispatcher sweep."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
from collections import Counter
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from points_service.clock import utc_now
from points_service.services.sweeps import run_job

# -- a local receiver -----------------------------------------------------------------------------


class Receiver:
    """An HTTP server on 127.0.0.1 that verifies each delivery and answers as `answer` says.

    `answer(webhook_id, nth)` -> status or (status, Location), nth counting this id's requests from 1.
    Any other request (a GET) is recorded too, with verified False."""

    def __init__(self, answer=lambda webhook_id, nth: 204):
        self.answer = answer
        self.secret: str | None = None
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    Webhook(receiver.secret).verify(body, headers)
                    verified = True
                except WebhookVerificationError:
                    verified = False
                webhook_id = self.headers["webhook-id"]
                with receiver.lock:
                    nth = 1 + sum(r["id"] == webhook_id for r in receiver.requests)
                    answer = receiver.answer(webhook_id, nth) if verified else 400
                    status, location = answer if isinstance(answer, tuple) else (answer, None)
                    receiver.requests.append(
                        {
                            "method": "POST",
                            "id": webhook_id,
                            "status": status,
                            "verified": verified,
                            "headers": headers,
                            "body": body,
                            "path": self.path,
                        }
                    )
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self):
                with receiver.lock:
                    receiver.requests.append(
                        {
                            "method": "GET",
                            "id": self.headers.get("webhook-id"),
                            "status": 200,
                            "verified": False,
                        }
                    )
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hooks/points"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def accepted(self) -> Counter:
        """How many times each webhook-id was answered with a 2xx."""
        return Counter(r["id"] for r in self.requests if 200 <= r["status"] < 300)

    def events(self) -> list[dict]:
        return [json.loads(r["body"]) for r in self.requests if 200 <= r["status"] < 300]


@pytest.fixture
def receivers():
    started: list[Receiver] = []

    def start(answer=lambda webhook_id, nth: 204) -> Receiver:
        receiver = Receiver(answer)
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.stop()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def local(app):
    """The runtime with loopback webhook URLs allowed, for local receivers."""
    runtime = app.extensions["points_service"]
    app.extensions["points_service"] = replace(
        runtime, settings=replace(runtime.settings, webhook_allow_private=True)
    )
    yield app.extensions["points_service"]
    app.extensions["points_service"] = runtime


@pytest.fixture
def dispatch(app):
    """dispatch(now) -> the dispatcher sweep's counts; `now` defaults to the real clock."""

    def run(now: dt.datetime | None = None) -> dict:
        rt = app.extensions["points_service"]
        return run_job(
            rt.sessions, "dispatch-webhooks", settings=rt.settings, pii=rt.pii, now=now or utc_now()
        )

    return run


