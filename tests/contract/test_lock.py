"""The lock files: every package pinned with hashes, and the pins satisfy pyproject.toml."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))


def _pins(name: str) -> dict[str, list[tuple[Version, Marker | None]]]:
    """package -> [(version, marker)] of a lock file; each entry must carry its hashes."""
    text = (ROOT / name).read_text("utf-8")
    pins: dict[str, list[tuple[Version, Marker | None]]] = {}
    for entry in re.split(r"\n(?=[a-z0-9])", text):
        head = entry.split("\\", 1)[0].strip()
        if not head or head.startswith("#"):
            continue
        assert "--hash=sha256:" in entry, f"{head} has no hash in {name}"
        requirement = Requirement(head)
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"{head} is not pinned exactly in {name}"
        pins.setdefault(canonicalize_name(requirement.name), []).append(
            (Version(spec.version), requirement.marker)
        )
    return pins


def _applies(marker: Marker | None) -> bool:
    return marker is None or marker.evaluate({"python_version": "3.11", "python_full_version": "3.11.7"})


@pytest.mark.parametrize(
    ("lock", "groups"),
    [("requirements.lock", ()), ("requirements-dev.lock", ("dev",))],
)
def test_the_lock_pins_every_dependency_of_pyproject_within_its_range(lock, groups):
    pins = _pins(lock)
    declared = list(PYPROJECT["project"]["dependencies"])
    for group in groups:
        declared += PYPROJECT["project"]["optional-dependencies"][group]
    for line in declared:
        wanted = Requirement(line)
        versions = [v for v, marker in pins.get(canonicalize_name(wanted.name), []) if _applies(marker)]
        assert versions, f"{wanted.name} is in pyproject.toml but not in {lock}: run make lock"
        for version in versions:
            assert version in wanted.specifier, f"{lock}: {wanted.name}=={version}, pyproject: {wanted}"


def test_the_dev_lock_has_the_images_versions():
    # compared as installed here (CPython 3.11 on Linux): a dev tool may widen a package's marker
    # to another platform (selenium's trio needs cffi on Windows) without changing what installs
    runtime, dev = _pins("requirements.lock"), _pins("requirements-dev.lock")
    for name, versions in runtime.items():
        assert _installed(dev.get(name, [])) == _installed(versions), (
            f"{name}: the image and make would install different versions"
        )


def _installed(pins: list[tuple[Version, Marker | None]]) -> list[Version]:
    return sorted(version for version, marker in pins if _applies(marker))
