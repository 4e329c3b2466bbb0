"""The demo's decisions: drawn as inspectors would post them, then written with their ledger entries."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy.orm import Session

from ..persistence.copy import LEDGER_COLUMNS, VIOLATION_COLUMNS, copy_rows, reserve_ids
from ..persistence.models import LedgerEntry, Violation
from ..rules import standing as rules
from ..rules.calendar import score_year
from ..rules.policy import PolicySet
from ..services.violations import RecordViolation
from .seeding import Case, Seeding

# the share of decisions per band (1–3, 4–6, 7–9, 10–12 points) and per responsibility
_BAND_WEIGHTS = ((1, 86.0), (2, 11.5), (3, 2.2), (4, 0.3))
_RESPONSIBILITY_WEIGHTS = (("general", 55), ("important", 32), ("main", 13))
# rounds of drawing decisions again in place of those a termination made impossible
_DRAW_ROUNDS = 8


# -- decisions ----------------------------------------------------------------------------------------


class _DecisionDraw:
    """Decisions on registered people over the previous and the current year: most 1–3 points,
    fewer 4–6, rare 7–12, each scored under the profile of its province and date."""

    def __init__(self, seeding: Seeding, repeaters: Sequence[int]):
        self.seeding, self.repeaters = seeding, repeaters
        policies = seeding.policies
        earliest = max(p.effective_from for p in policies.profiles.values())
        self.first_day = max(dt.date(seeding.today.year - 1, 1, 1), earliest)
        self.code_index = {row[0]: j for j, row in enumerate(seeding.institutions)}
        self.by_band: dict[int, list[str]] = defaultdict(list)
        default = policies.profiles[policies.default_id]
        for behaviour in sorted(default.catalogue.values(), key=lambda b: b.code):
            self.by_band[behaviour.band].append(behaviour.code)
        self.bands = ([band for band, _ in _BAND_WEIGHTS], [weight for _, weight in _BAND_WEIGHTS])
        self.responsibilities = (
            [r for r, _ in _RESPONSIBILITY_WEIGHTS],
            [weight for _, weight in _RESPONSIBILITY_WEIGHTS],
        )
        self.profiles: dict[tuple[str, dt.date], str] = {}

    def draw(self, count: int, *, first_serial: int) -> list[Case]:
        """Up to `count` decisions; some draws find no registration to put the conduct in."""
        if self.first_day > self.seeding.today:
            return []
        cases: list[Case] = []
        attempts = 0
        while len(cases) < count and attempts < count * 20 + 100:
            attempts += 1
            case = self._one(first_serial + len(cases))
            if case is not None:
                cases.append(case)
        return cases

    def _one(self, serial: int) -> Case | None:
        rng, seeding = self.seeding.rng, self.seeding
        person = rng.choice(self.repeaters) if rng.random() < 0.15 else rng.randrange(len(seeding.codes))
        decided = rng.randint(self.first_day.toordinal(), seeding.today.toordinal())
        occurred_floor = decided - rng.randint(0, 90)
        spans = [
            r
            for r in seeding.registrations_of.get(person, ())
            if r.start.toordinal() <= decided and (r.end is None or r.end.toordinal() > occurred_floor)
        ]
        if not spans:
            return None
        registration = rng.choice(spans)
        first = max(registration.start.toordinal(), occurred_floor)
        last = decided if registration.end is None else min(decided, registration.end.toordinal() - 1)
        if first > last:
            return None
        occurred, decided_on = dt.date.fromordinal(rng.randint(first, last)), dt.date.fromordinal(decided)
        band = rng.choices(*self.bands)[0]
        behaviour = rng.choice(self.by_band[band])
        responsibility = rng.choices(*self.responsibilities)[0]
        j = self.code_index[registration.institution_code]
        profile = self._profile(seeding.institutions[j][3], decided_on)
        return Case(
            person=person,
            institution=j,
            case_ref=f"DEMO-{seeding.seed}-{serial:07d}",
            serial=serial,
            behaviour=behaviour,
            responsibility=responsibility,
            points=seeding.policies.profiles[profile].points_for(behaviour, responsibility),
            occurred_on=occurred,
            decided_on=decided_on,
            profile=profile,
        )

    def _profile(self, region: str, day: dt.date) -> str:
        key = (region[:2], day)
        if key not in self.profiles:
            self.profiles[key] = self.seeding.policies.profile_for(region, day).id
        return self.profiles[key]


def draw_decisions(seeding: Seeding, count: int) -> None:
    """`count` decisions, a few repeat offenders among them, in decision-date order (ledger ids
    order decisions of the same day). A decision on conduct after a termination ended the
    person's registrations is one the API would refuse: it is dropped and another drawn instead."""
    people = len(seeding.codes)
    draw = _DecisionDraw(seeding, seeding.rng.sample(range(people), max(1, min(people, count // 20))))
    by_person: dict[int, list[Case]] = defaultdict(list)
    drawn = 0
    for _ in range(_DRAW_ROUNDS):
        need = count - sum(len(own) for own in by_person.values())
        new = draw.draw(need, first_serial=drawn) if need > 0 else []
        if not new:
            break
        drawn += len(new)
        for case in new:
            by_person[case.person].append(case)
        ordered = sorted(
            (c for own in by_person.values() for c in own), key=lambda c: (c.decided_on, c.person, c.serial)
        )
        for number, case in enumerate(ordered):
            case.entry = number
        for i in {case.person for case in new}:
            by_person[i].sort(key=lambda c: c.entry)
            _drop_after_termination(by_person[i], seeding.registrations_of[i], seeding.policies)
    seeding.cases = sorted((c for own in by_person.values() for c in own), key=lambda c: c.entry)


def _drop_after_termination(
    own: list[Case], registrations: Sequence[rules.Registration], policies: PolicySet
) -> None:
    """Drop the person's decisions on conduct from the day a termination ended their registrations;
    dropping one may undo a termination, so until nothing changes."""
    while True:
        state = rules.derive_state(
            decisions=[c.decision() for c in own], registrations=registrations, policies=policies.profiles
        )
        ended = min((t.start for t in state.terminations), default=None)
        keep = [c for c in own if ended is None or c.occurred_on < ended]
        if len(keep) == len(own):
            return
        own[:] = keep


# -- the ledger, the snapshots and the measures ---------------------------------------------------------


def write_decisions(session: Session, seeding: Seeding) -> None:
    """The violations and their ledger entries, with ids reserved first so each entry names its
    violation."""
    cases = seeding.cases
    for case, vid, eid in zip(
        cases,
        reserve_ids(session, Violation, len(cases)),
        reserve_ids(session, LedgerEntry, len(cases)),
        strict=True,
    ):
        case.violation_id, case.entry_id = vid, eid
    copy_rows(session, Violation, VIOLATION_COLUMNS, (_violation_row(seeding, c) for c in cases))
    copy_rows(
        session,
        LedgerEntry,
        LEDGER_COLUMNS,
        (
            (
                c.entry_id,
                seeding.person_ids[c.person],
                "decision",
                score_year(c.decided_on),
                c.decided_on,
                c.points,
                c.violation_id,
                c.profile,
                seeding.now,
                seeding.actor,
            )
            for c in cases
        ),
    )


def _violation_row(seeding: Seeding, case: Case) -> tuple:
    institution = seeding.institutions[case.institution][0]
    description = f"demo decision: {case.behaviour} at {institution}"
    # the fingerprint of the request that would have posted it, so that posting it again replays
    fingerprint = RecordViolation(
        case_ref=case.case_ref,
        practitioner_code=seeding.codes[case.person],
        institution_code=institution,
        behaviour_code=case.behaviour,
        responsibility=case.responsibility,
        occurred_on=case.occurred_on,
        decided_on=case.decided_on,
        description=description,
    ).fingerprint()
    return (
        case.violation_id,
        case.case_ref,
        seeding.person_ids[case.person],
        seeding.institution_ids[case.institution],
        case.behaviour,
        case.responsibility,
        None,
        None,
        case.points,
        case.occurred_on,
        case.decided_on,
        score_year(case.decided_on),
        case.profile,
        description,
        "[]",
        fingerprint,
        seeding.now,
        seeding.actor,
    )
