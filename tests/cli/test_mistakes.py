"""Operator mistakes are answered in a line or two that say what is wrong and what to do."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from alembic import command
from conftest import answered
from databases import TEST_URL
from sqlalchemy.engine import make_url

from points_service.cli import serve as serve_command
from points_service.persistence.schema import alembic_config
from points_service.settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parents[2]

# every command that needs a migrated database, with arguments that are otherwise fine
COMMANDS = [
    ("keys", "list"),
    ("keys", "create", "--role", "admin"),
    ("keys", "revoke", "pts_whatever"),
    ("pii", "rotate"),
    ("jobs", "run", "reconcile"),
    ("scheduler", "run"),
    ("demo", "seed", "--practitioners", "1", "--violations", "0"),
    ("db", "check"),
    ("db", "current"),
]


def _ids(commands):
    return [" ".join(c[:2]) for c in commands]


@pytest.mark.parametrize("args", COMMANDS, ids=_ids(COMMANDS))
def test_a_command_on_a_database_that_was_never_migrated_names_it_and_says_db_upgrade(invoke, fresh, args):
    url = fresh("empty")
    result = invoke(*args, env={"POINTS_DATABASE_URL": url})
    answered(result, _shown(url), "db upgrade`", "never migrated")


def _shown(url: str) -> str:
    parsed = make_url(url)
    return str(Path(parsed.database)) if parsed.get_backend_name() == "sqlite" else parsed.render_as_string()


@pytest.mark.parametrize("args", COMMANDS, ids=_ids(COMMANDS))
def test_a_command_on_a_missing_sqlite_file_says_db_upgrade_and_creates_nothing(invoke, tmp_path, args):
    path = tmp_path / "nowhere" / "points.db"
    result = invoke(*args, env={"POINTS_DATABASE_URL": f"sqlite:///{path}"})
    answered(result, str(path), "db upgrade` creates it")
    assert not path.exists() and not path.parent.exists()


def test_an_import_on_a_database_that_was_never_migrated_says_db_upgrade(invoke, fresh, tmp_path):
    csv = tmp_path / "i.csv"
    csv.write_text("code,name,kind,region_code\nH1,H,medical_institution,130100\n", "utf-8")
    result = invoke("import", "institutions", str(csv), env={"POINTS_DATABASE_URL": fresh("import")})
    answered(result, "db upgrade")


def test_db_current_on_an_empty_database_says_it_is_empty(invoke, fresh):
    answered(invoke("db", "current", env={"POINTS_DATABASE_URL": fresh("current")}), "is empty")


def test_db_current_on_a_migrated_database_names_its_revision(invoke, fresh):
    result = invoke("db", "current", env={"POINTS_DATABASE_URL": fresh("current", migrated=True)})
    assert result.exit_code == 0, result.output
    assert "(head)" in result.output and "up to date" in result.output


def test_a_database_behind_this_version_is_refused_with_db_upgrade(invoke, fresh):
    url = fresh("behind")
    command.upgrade(alembic_config(url), "0005")
    answered(invoke("keys", "list", env={"POINTS_DATABASE_URL": url}), "at revision 0005", "db upgrade")
    assert invoke("db", "upgrade", env={"POINTS_DATABASE_URL": url}).exit_code == 0
    assert invoke("keys", "list", env={"POINTS_DATABASE_URL": url}).exit_code == 0


def test_db_upgrade_creates_the_sqlite_file_and_its_folder(invoke, tmp_path):
    path = tmp_path / "new" / "points.db"
    result = invoke("db", "upgrade", env={"POINTS_DATABASE_URL": f"sqlite:///{path}"})
    assert result.exit_code == 0, result.output
    assert path.is_file() and str(path) in result.output


def test_a_database_that_does_not_answer_is_one_line(invoke):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again below: nothing listens there
    url = f"postgresql://postgres@127.0.0.1:{port}/points?connect_timeout=2"
    answered(invoke("keys", "list", env={"POINTS_DATABASE_URL": url}), "database error", str(port))


# -- settings ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "meant"),
    [
        ("postgres://app:s3cret@db.internal:5433/points", "postgresql+psycopg://app:s3cret@db.internal:5433/points"),
        ("postgresql://app@db/points?sslmode=require", "postgresql+psycopg://app@db/points?sslmode=require"),
        ("postgresql+psycopg://app@db/points", "postgresql+psycopg://app@db/points"),
    ],
)
def test_postgres_urls_as_hosting_platforms_give_them_mean_postgresql(monkeypatch, given, meant):
    monkeypatch.setenv("POINTS_DATABASE_URL", given)
    assert Settings.from_env().database_url == meant


@pytest.mark.skipif(not TEST_URL, reason="needs POINTS_TEST_DATABASE_URL pointing at PostgreSQL")
def test_a_command_takes_the_postgres_form_of_a_real_database_url(invoke, fresh):
    url = make_url(fresh("heroku", migrated=True))
    heroku = url.set(drivername="postgres").render_as_string(hide_password=False)
    result = invoke("db", "current", env={"POINTS_DATABASE_URL": heroku})
    assert result.exit_code == 0, result.output


def test_every_bad_setting_is_named_on_a_line_of_its_own(invoke, tmp_path):
    env = {
        "POINTS_DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}",
        "POINTS_MAX_BODY_BYTES": "1MB",
        "POINTS_LOG_LEVEL": "verbose",
        "POINTS_ENCRYPTION_KEYS": "abc",
        "POINTS_WEB_WORKERS": "0",
        "PORT": "http",
    }
    text = answered(invoke("db", "upgrade", env=env), most_lines=5)
    lines = text.splitlines()
    for name in ("POINTS_MAX_BODY_BYTES", "POINTS_LOG_LEVEL", "POINTS_ENCRYPTION_KEYS", "POINTS_WEB_WORKERS"):
        assert sum(line.startswith(f"Error: {name}:") for line in lines) == 1, (name, text)
    assert sum(line.startswith("Error: PORT:") for line in lines) == 1, text
    assert "1048576" in text and "'1MB'" in text
    assert not (tmp_path / "p.db").exists()


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("POINTS_ENCRYPTION_KEYS", "abc", "key_id:<base64>"),
        ("POINTS_ENCRYPTION_KEYS", "k1:c2hvcnQ=", "32 bytes"),
        ("POINTS_INDEX_KEY", "abc", "not valid base64"),
        ("POINTS_INDEX_KEY_PREVIOUS", "abc", "not valid base64"),
        ("POINTS_DATABASE_URL", "mysql://u:pw@h/db", "PostgreSQL or SQLite"),
        ("POINTS_RATE_LIMIT", "lots", "200 per second"),
        ("POINTS_REDIS_URL", "localhost:6379", "redis://"),
        ("POINTS_DEFAULT_PROFILE", "nowhere-2030", "not loaded"),
        ("POINTS_INDEX_KEY_FILE", "/nonexistent/index.key", "cannot read"),
    ],
)
@pytest.mark.parametrize("args", [("keys", "create", "--role", "admin"), ("serve",), ("db", "upgrade")])
def test_a_malformed_setting_is_refused_by_every_command_naming_its_variable(
    invoke, tmp_path, variable, value, said, args
):
    env = {"POINTS_DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}", variable: value}
    text = answered(invoke(*args, env=env), f"Error: {variable}: ", said, most_lines=1)
    assert "pw" not in text  # a password in a URL is never echoed
    assert not (tmp_path / "p.db").exists()


def test_a_lower_case_log_level_is_accepted(monkeypatch):
    monkeypatch.setenv("POINTS_LOG_LEVEL", "debug")
    assert Settings.from_env().log_level == "DEBUG"


def test_settings_errors_never_contain_key_material(monkeypatch):
    monkeypatch.setenv("POINTS_INDEX_KEY", "c2hvcnQta2V5LW1hdGVyaWFs")
    with pytest.raises(SettingsError) as refused:
        Settings.from_env()
    assert "c2hvcnQta2V5LW1hdGVyaWFs" not in str(refused.value)
    assert [name for name, _ in refused.value.problems] == ["POINTS_INDEX_KEY"]


def test_the_default_database_is_in_the_project_whatever_the_folder(invoke, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    expected = ROOT / "var" / "points.db"
    assert Settings.from_env().database_url == f"sqlite:///{expected}"
    # click wraps the help at spaces and hyphens, so compare without the wrapping
    assert "".join(str(expected).split()) in "".join(invoke("--help").output.split())


def test_version_prints_the_installed_version(invoke):
    from importlib.metadata import version

    result = invoke("--version")
    assert result.exit_code == 0 and result.output == f"points-service, version {version('points-service')}\n"


# -- serving -----------------------------------------------------------------------------------------


@pytest.fixture
def started(monkeypatch):
    """What `run` and `serve` would start: nothing runs; gunicorn and the scheduler are recorded."""
    calls: list[list[str]] = []

    class Exited:
        returncode = 0

        def __init__(self, argv, **_):
            calls.append(list(argv))

        def poll(self):
            return 0

        def wait(self, timeout=None):
            return 0

        def terminate(self):
            pass

    def execv(path, argv):
        calls.append(list(argv))
        raise SystemExit(0)

    monkeypatch.setattr(serve_command.subprocess, "Popen", Exited)
    monkeypatch.setattr(serve_command.os, "execv", execv)
    return calls


@pytest.fixture
def busy_port():
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        yield taken.getsockname()[1]


def test_run_names_a_port_in_use_before_it_starts_anything(invoke, started, busy_port, tmp_path):
    env = {"POINTS_DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}", "PORT": str(busy_port)}
    answered(invoke("run", env=env), f"PORT {busy_port}", "PORT=8001 make run")
    assert started == []
    assert not (tmp_path / "p.db").exists()


def test_serve_names_a_port_in_use_before_it_starts_anything(invoke, started, busy_port, tmp_path):
    env = {
        "POINTS_DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}",
        "PORT": str(busy_port),
        "POINTS_ALLOW_DEV_KEYS": "1",
    }
    answered(invoke("serve", env=env), f"PORT {busy_port}")
    assert started == []


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_second_run_says_how_to_create_another_admin_key(invoke, started, tmp_path):
    env = {"POINTS_DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}", "PORT": str(_free_port())}
    first = invoke("run", env=env)
    assert first.exit_code == 0, first.output
    assert "POINTS_ADMIN_KEY=pts_" in first.output
    second = invoke("run", env=env)
    assert second.exit_code == 0, second.output
    assert "POINTS_ADMIN_KEY" not in second.output
    assert "keys create --role admin" in second.output
    gunicorn, scheduler = started[-2:]
    assert f"127.0.0.1:{env['PORT']}" in gunicorn and scheduler[-2:] == ["scheduler", "run"]
