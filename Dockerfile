# syntax=docker/dockerfile:1

# Pinned by tag for readability here; production builds pin the same image by digest
# (python:3.11-slim-bookworm@sha256:...) so a rebuilt tag cannot change the image silently.
FROM python:3.11-slim-bookworm AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# A venv is copied whole into the runtime stage, leaving pip's build leftovers behind.
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# The locked, hash-checked dependencies first and on their own: a change to the code reuses this
# layer instead of installing every dependency again.
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY points_service/ points_service/
# --no-deps: everything the project needs is already installed, at the locked versions.
RUN pip install --no-cache-dir --no-deps .


FROM python:3.11-slim-bookworm AS runtime

# Fixed uid so volume permissions and Kubernetes runAsUser policies stay predictable;
# --no-log-init avoids a huge sparse lastlog file for a high uid.
RUN groupadd --system --gid 10001 points \
    && useradd --system --no-log-init --uid 10001 --gid points \
       --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin points

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH

COPY --from=builder /opt/venv /opt/venv

# Alembic runs from /app at start-up; files stay root-owned so the service cannot rewrite them.
# var/ holds the SQLite default (a trial without PostgreSQL), so the service user must own it.
# gunicorn's control socket and metrics go in a folder per server under /tmp (gunicorn_conf).
WORKDIR /app
COPY alembic.ini ./
COPY migrations/ migrations/
RUN mkdir /app/var && chown 10001:10001 /app/var

# Numeric so Kubernetes runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
EXPOSE 8000

# urllib exits non-zero on connection errors and HTTP >= 400, so no curl is needed in the image.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/health/live', timeout=4)"]

# `serve` runs migrations and then execs gunicorn, so gunicorn is PID 1 and receives SIGTERM.
CMD ["points-service", "serve"]
