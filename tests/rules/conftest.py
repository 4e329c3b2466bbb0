"""Fixtures for the pure rules of docs/rules.md: the shipped profiles, loaded once."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest
from rules_builders import HEBEI, QINGHAI, derive

from points_service.rules.policy import Policy, PolicySet
from points_service.rules.standing import PersonState
from points_service.settings import load_policy_set


@pytest.fixture(scope="session")
def policies() -> PolicySet:
    """The shipped profiles with the deployment default `hebei-2025` (rule 27)."""
    return load_policy_set()


@pytest.fixture(scope="session")
def profiles(policies: PolicySet) -> Mapping[str, Policy]:
    """Profile id -> Policy, as `derive_state(policies=...)` takes it."""
    return policies.profiles


@pytest.fixture(scope="session")
def hebei(policies: PolicySet) -> Policy:
    return policies.get(HEBEI)


@pytest.fixture(scope="session")
def qinghai(policies: PolicySet) -> Policy:
    return policies.get(QINGHAI)


@pytest.fixture(scope="session")
def state_of(profiles: Mapping[str, Policy]) -> Callable[..., PersonState]:
    """`state_of(decisions, repairs=..., reversals=..., registrations=...)` with the shipped profiles."""

    def _derive(decisions=(), **kwargs) -> PersonState:
        return derive(profiles, decisions, **kwargs)

    return _derive
