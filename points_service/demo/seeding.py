"""What one run of the demo generator has drawn and written so far, and what it reports."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from ..rules import standing as rules
from ..rules.policy import PolicySet
from ..services.imports.institutions import InstitutionRow


@dataclass
class DemoSummary:
    seed: int
    institutions: int = 0
    practitioners: int = 0
    registrations: int = 0
    multi_site: int = 0
    violations: int = 0
    measures: int = 0
    status: Counter = field(default_factory=Counter)
    people_suspended_ever: int = 0
    people_terminated: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    example_institution: str = ""
    example_practitioner: str = ""


@dataclass
class Seeding:
    """What one seeding run has drawn and written so far; each step adds its part."""

    rng: random.Random
    seed: int
    today: dt.date
    now: dt.datetime
    policies: PolicySet
    actor: str
    institutions: list[InstitutionRow] = field(default_factory=list)
    institution_ids: list[int] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    person_ids: list[int] = field(default_factory=list)
    home: list[int] = field(default_factory=list)  # person index -> institution index
    # person index -> registrations (with their final ids) as the rules see them
    registrations_of: dict[int, list[rules.Registration]] = field(default_factory=lambda: defaultdict(list))
    cases: list[Case] = field(default_factory=list)  # in ledger order


@dataclass
class Case:
    """A decision drawn for a person (by index) at an institution (by index); its ids once written."""

    person: int
    institution: int
    case_ref: str
    behaviour: str
    responsibility: str
    points: int
    occurred_on: dt.date
    decided_on: dt.date
    profile: str
    serial: int = 0
    entry: int = 0
    violation_id: int = 0
    entry_id: int = 0

    def decision(self) -> rules.Decision:
        # before ids are known the generation order stands in for them (same order, same result)
        return rules.Decision(
            self.entry_id or self.entry + 1,
            self.violation_id or -(self.entry + 1),
            self.decided_on,
            self.points,
            self.profile,
        )


def person_code(seed: int, i: int) -> str:
    return f"D{seed}-{i:07d}"
