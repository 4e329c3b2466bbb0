"""A person's derived state, recomputed from their ledger (docs/rules.md §3, §4 rules 21–22, §5 rule 24).

`derive_state` is the one function that turns decisions, reversals, repairs and registrations into
year totals, measures, suspensions, terminations and registration spans. `eligibility_on` answers
"may this person's services be settled on this day?" from that state (rule 18).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import msgspec
from msgspec.structs import replace

from .calendar import add_months, add_years, score_year
from .policy import MEASURE_KINDS, TIERS, Policy, tier_rank

# -- inputs: the ledger ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """A scoring decision (ledger kind `decision`). An amendment is a reversal plus a new Decision."""

    entry_id: int  # ledger order; breaks ties between entries of the same date
    violation_id: int
    decided_on: dt.date
    points: int
    profile_id: str


@dataclass(frozen=True)
class Reversal:
    """Cancels one decision entry as if it had never been made (rule 24)."""

    entry_id: int
    reverses_entry_id: int
    on: dt.date


@dataclass(frozen=True)
class Repair:
    """An approved repair application; its credit is computed here, on its approval date (rules 19–22)."""

    entry_id: int
    repair_id: int
    approved_on: dt.date
    activity: str
    profile_id: str


@dataclass(frozen=True)
class Registration:
    registration_id: int
    institution_code: str
    start: dt.date
    end: dt.date | None  # exclusive; None while open


# -- outputs: the derived state ---------------------------------------------------------------


# msgspec Structs rather than frozen dataclasses: as immutable, compared and hashed the same way, but
# built in C. A batch or roster builds several for each of thousands of people, and a frozen dataclass
# cost 1-3 µs apiece to build (its __init__ sets each field through object.__setattr__). The parts
# stored as arrays in the snapshot (rules.snapshot) are `array_like`, so that array is their form.


class Measure(msgspec.Struct, frozen=True, array_like=True):
    kind: str
    year: int
    triggered_on: dt.date
    violation_id: int


class Suspension(msgspec.Struct, frozen=True, array_like=True):
    start: dt.date
    end: dt.date  # exclusive: eligible again on `end`
    months: int
    year: int
    violation_id: int
    basis: str  # "cumulative" | "single_event"
    shortened_by_months: int = 0


class Termination(msgspec.Struct, frozen=True, array_like=True):
    start: dt.date
    barred_until: dt.date  # a registration starting on or after this date is allowed
    bar_years: int
    year: int
    violation_id: int
    basis: str
    shortened_by_months: int = 0


class RepairCredit(msgspec.Struct, frozen=True, array_like=True):
    repair_id: int
    year: int
    approved_on: dt.date
    activity: str
    points: int
    months_shortened: int
    shortened: str | None  # "suspension" | "bar" | None


class YearStanding(msgspec.Struct, frozen=True):
    year: int
    points_recorded: int
    points_repaired: int
    max_single_event: int
    tier: str

    @property
    def points_total(self) -> int:
        return self.points_recorded - self.points_repaired


class RegistrationSpan(msgspec.Struct, frozen=True, array_like=True):
    registration_id: int
    institution_code: str
    start: dt.date
    end: dt.date | None
    ended_by: str | None  # "registry" (ended by the institution) | "termination" | None
    termination_violation_id: int | None = None

    def covers(self, day: dt.date) -> bool:
        return self.start <= day and (self.end is None or day < self.end)

    @property
    def void(self) -> bool:
        return self.end is not None and self.end <= self.start


class PersonState(msgspec.Struct, frozen=True):
    years: tuple[YearStanding, ...] = ()
    measures: tuple[Measure, ...] = ()
    suspensions: tuple[Suspension, ...] = ()
    terminations: tuple[Termination, ...] = ()
    repairs: tuple[RepairCredit, ...] = ()
    registrations: tuple[RegistrationSpan, ...] = ()
    decisions: tuple[int, ...] = ()  # violation ids in effect

    def year(self, year: int) -> YearStanding:
        for standing in self.years:
            if standing.year == year:
                return standing
        return YearStanding(year=year, points_recorded=0, points_repaired=0, max_single_event=0, tier="none")

    @property
    def barred_until(self) -> dt.date | None:
        return max((t.barred_until for t in self.terminations), default=None)

    def triggered_by(self, violation_id: int) -> list[Measure | Suspension | Termination]:
        """What one decision set off: its measure or sanction (rule 12: only the more severe one)."""
        found: list[Measure | Suspension | Termination] = []
        found.extend(m for m in self.measures if m.violation_id == violation_id)
        found.extend(s for s in self.suspensions if s.violation_id == violation_id)
        found.extend(t for t in self.terminations if t.violation_id == violation_id)
        return found


# -- the derivation -------------------------------------------------------------------------------


@dataclass
class _Year:
    year: int
    recorded: int = 0
    repaired: int = 0
    max_single: int = 0
    tier: int = 0
    imposed_months: int = 0
    longest_single_months: int = 0
    termination_level: int = 0  # 0 none, 1 cumulative bar, 2 single-event bar
    repaired_by_activity: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.recorded - self.repaired


def derive_state(
    *,
    decisions: Iterable[Decision],
    reversals: Iterable[Reversal] = (),
    repairs: Iterable[Repair] = (),
    registrations: Iterable[Registration] = (),
    policies: Mapping[str, Policy],
) -> PersonState:
    """Recompute everything derived for one person from their ledger.

    Decisions and repairs are replayed in date order (ledger order within a day); a reversed
    decision is left out entirely, so revoking it lifts whatever it caused (rule 24).
    """
    decisions = list(decisions)
    reversed_ids = {r.reverses_entry_id for r in reversals}
    effective = [d for d in decisions if d.entry_id not in reversed_ids]
    # rule 24: an amendment is a new entry, but the decision keeps the place it was first recorded
    # in among the decisions of its day, so the order is that of the violation's first entry
    first_entry: dict[int, int] = {}
    for d in decisions:
        first_entry[d.violation_id] = min(d.entry_id, first_entry.get(d.violation_id, d.entry_id))
    timeline: list[tuple[dt.date, int, Decision | Repair]] = [
        (d.decided_on, first_entry[d.violation_id], d) for d in effective
    ]
    timeline.extend((r.approved_on, r.entry_id, r) for r in repairs)
    timeline.sort(key=lambda item: (item[0], item[1]))

    years: dict[int, _Year] = {}
    measures: list[Measure] = []
    suspensions: list[Suspension] = []
    terminations: list[Termination] = []
    credits: list[RepairCredit] = []

    for _, _, item in timeline:
        if isinstance(item, Decision):
            _apply_decision(item, policies[item.profile_id], years, measures, suspensions, terminations)
        else:
            credits.append(_apply_repair(item, policies[item.profile_id], years, suspensions, terminations))

    standings = tuple(
        YearStanding(
            year=y.year,
            points_recorded=y.recorded,
            points_repaired=y.repaired,
            max_single_event=y.max_single,
            tier=_tier_name(y.tier),
        )
        for y in sorted(years.values(), key=lambda y: y.year)
    )
    return PersonState(
        years=standings,
        measures=tuple(measures),
        suspensions=tuple(suspensions),
        terminations=tuple(terminations),
        repairs=tuple(credits),
        registrations=tuple(registration_spans(registrations, terminations)),
        decisions=tuple(
            d.violation_id
            for d in sorted(effective, key=lambda d: (d.decided_on, first_entry[d.violation_id]))
        ),
    )


def _tier_name(rank: int) -> str:
    return TIERS[rank]


def _apply_decision(
    decision: Decision,
    policy: Policy,
    years: dict[int, _Year],
    measures: list[Measure],
    suspensions: list[Suspension],
    terminations: list[Termination],
) -> None:
    year = years.setdefault(score_year(decision.decided_on), _Year(score_year(decision.decided_on)))
    year.recorded += decision.points
    year.max_single = max(year.max_single, decision.points)

    # rule 12 and 13: the tier reached is the more severe of the cumulative and single-event rules
    cumulative = policy.cumulative_tier(year.total)
    single = policy.single_event_tier(decision.points)
    reached = max(tier_rank(cumulative), tier_rank(single))
    if reached > year.tier:
        kind = _tier_name(reached)
        if kind in MEASURE_KINDS:
            measures.append(Measure(kind, year.year, decision.decided_on, decision.violation_id))
        year.tier = reached

    # rules 11, 12, 17: termination, once per level per year; a 3-year bar outranks a 1-year bar
    level = (
        2
        if decision.points >= policy.termination_points
        else 1
        if year.total >= policy.termination_points
        else 0
    )
    if level > year.termination_level:
        bar_years = policy.single_event_bar_years if level == 2 else policy.cumulative_bar_years
        terminations.append(
            Termination(
                start=decision.decided_on,
                barred_until=add_years(decision.decided_on, bar_years),
                bar_years=bar_years,
                year=year.year,
                violation_id=decision.violation_id,
                basis="single_event" if level == 2 else "cumulative",
            )
        )
        year.termination_level = level
        return
    if year.termination_level:
        # a terminated year's outcome is already the most severe; later suspensions add nothing (rule 12)
        return

    # rule 14: the months imposed in a year equal the longest term due so far; top up the difference
    year.longest_single_months = max(year.longest_single_months, policy.single_event_months(decision.points))
    cumulative_months = policy.cumulative_months(year.total)
    due = max(cumulative_months, year.longest_single_months)
    if due <= year.imposed_months:
        return
    months = due - year.imposed_months
    year.imposed_months = due
    # rule 15: start on the decision date, or when the running (and queued) suspension ends
    last_end = max((s.end for s in suspensions), default=None)
    start = last_end if last_end is not None and last_end > decision.decided_on else decision.decided_on
    basis = "single_event" if year.longest_single_months >= cumulative_months else "cumulative"
    suspensions.append(
        Suspension(
            start=start,
            end=add_months(start, months),
            months=months,
            year=year.year,
            violation_id=decision.violation_id,
            basis=basis,
        )
    )


def repair_credit_for(
    *,
    activity: str,
    total: int,
    repaired: int,
    max_single: int,
    repaired_by_activity: Mapping[str, int],
    policy: Policy,
) -> tuple[int, str | None]:
    """How many points an approved repair removes, and which rule limited it (rules 20, 21, 26).

    Returns (credit, reason); the reason names the rule when the credit is below the activity's value.
    """
    rules = policy.repair
    if activity not in rules.credits:
        return 0, "docs/rules.md rule 20: unknown repair activity"
    if max_single >= policy.termination_points and not rules.single_event_termination_repairable:
        return 0, "docs/rules.md rule 21: a year that holds a single-event 12 cannot be repaired"
    credit = rules.credits[activity]
    reason = None
    if rules.yearly_cap - repaired < credit:
        credit, reason = (
            rules.yearly_cap - repaired,
            f"docs/rules.md rule 20: at most {rules.yearly_cap} points a year",
        )
    for cap in rules.kind_caps:
        if activity in cap.activities:
            left = cap.cap - sum(repaired_by_activity.get(a, 0) for a in cap.activities)
            if left < credit:
                credit, reason = (
                    left,
                    f"docs/rules.md rule 26: at most {cap.cap} points a year from these activities",
                )
    if total < credit:
        credit, reason = (
            total,
            "docs/rules.md rule 21: only points already recorded this year, never below zero",
        )
    return max(credit, 0), reason


def _apply_repair(
    repair: Repair,
    policy: Policy,
    years: dict[int, _Year],
    suspensions: list[Suspension],
    terminations: list[Termination],
) -> RepairCredit:
    year = years.setdefault(score_year(repair.approved_on), _Year(score_year(repair.approved_on)))
    credit, _ = repair_credit_for(
        activity=repair.activity,
        total=year.total,
        repaired=year.repaired,
        max_single=year.max_single,
        repaired_by_activity=year.repaired_by_activity,
        policy=policy,
    )
    before = year.repaired
    year.repaired += credit
    year.repaired_by_activity[repair.activity] = year.repaired_by_activity.get(repair.activity, 0) + credit
    # rule 22: every full `points_per_month` repaired in the year shortens the term in effect by a month
    per = policy.repair.points_per_month
    months = year.repaired // per - before // per
    shortened = None
    if months:
        shortened = _shorten_term_in_effect(repair.approved_on, months, suspensions, terminations)
    return RepairCredit(
        repair_id=repair.repair_id,
        year=year.year,
        approved_on=repair.approved_on,
        activity=repair.activity,
        points=credit,
        months_shortened=months if shortened else 0,
        shortened=shortened,
    )


def _shorten_term_in_effect(
    day: dt.date, months: int, suspensions: list[Suspension], terminations: list[Termination]
) -> str | None:
    """Trim `months` from the end of the bar or suspension chain in effect on `day`, never before `day`."""
    in_force = [t for t in terminations if t.start <= day < t.barred_until]
    if any(t.basis == "single_event" for t in in_force):
        # a single-event 12 is not repairable (rules 21, 26): its 3-year bar is never shortened
        return None
    bar = max((t.barred_until for t in in_force), default=None)
    if bar is not None:
        new_bar = max(add_months(bar, -months), day)
        for i, t in enumerate(terminations):
            if t.barred_until > new_bar:
                terminations[i] = replace(
                    t, barred_until=new_bar, shortened_by_months=t.shortened_by_months + months
                )
        return "bar"
    if not any(s.start <= day < s.end for s in suspensions):
        return None
    # every segment ending after `day` belongs to the running chain: terms are queued end to end
    chain_end = max(s.end for s in suspensions)
    new_end = max(add_months(chain_end, -months), day)
    trimmed = [
        replace(s, end=max(new_end, s.start), shortened_by_months=s.shortened_by_months + months)
        if s.end > new_end
        else s
        for s in suspensions
    ]
    # a queued term trimmed away no longer exists: later terms must not queue behind it (rule 15)
    suspensions[:] = [s for s in trimmed if s.end > s.start]
    return "suspension"


def registration_spans(
    registrations: Iterable[Registration], terminations: Iterable[Termination]
) -> list[RegistrationSpan]:
    """Registrations as they stand: a termination ends every open one on its date (rule 17).

    A registration starting inside a bar (recorded before the termination was) is void.
    Derived rather than stored, so a revoked termination re-opens what it ended.
    """
    terms = sorted(terminations, key=lambda t: t.start)
    spans = []
    for reg in sorted(registrations, key=lambda r: (r.start, r.registration_id)):
        end, ended_by, by_violation = reg.end, ("registry" if reg.end is not None else None), None
        for t in terms:
            if reg.start < t.start and (end is None or end > t.start):
                end, ended_by, by_violation = t.start, "termination", t.violation_id
            elif t.start <= reg.start < t.barred_until and (end is None or end > reg.start):
                end, ended_by, by_violation = reg.start, "termination", t.violation_id
        spans.append(
            RegistrationSpan(
                reg.registration_id, reg.institution_code, reg.start, end, ended_by, by_violation
            )
        )
    return spans


# -- eligibility (rule 18) -------------------------------------------------------------------------


class Eligibility(msgspec.Struct, frozen=True):
    at: dt.date
    eligible: bool
    status: str  # active | suspended | terminated | not_registered
    reason: str
    until: dt.date | None
    barred_until: dt.date | None = None
    emergency_care_settles: bool = True  # rule 18: emergency and rescue care always settle


def eligibility_on(state: PersonState, day: dt.date, institution_code: str | None = None) -> Eligibility:
    """Whether the person's services are settled by the fund on `day` (rule 18)."""
    spans = [s for s in state.registrations if not s.void]
    # most people were never terminated or suspended: their answer skips straight to the spans
    # (a batch or roster asks this for thousands of people)
    for t in sorted(state.terminations, key=lambda t: t.start, reverse=True) if state.terminations else ():
        if t.start <= day and not any(t.start <= s.start <= day for s in spans):
            bar = state.barred_until
            return Eligibility(
                at=day,
                eligible=False,
                status="terminated",
                reason=f"eligibility terminated on {t.start.isoformat()}; re-registration barred until "
                f"{bar.isoformat() if bar else t.barred_until.isoformat()} (docs/rules.md rule 17)",
                # a termination lasts until a registration that starts after it: one already recorded
                # is the next known change
                until=_next_start(spans, day, institution_code),
                barred_until=bar,
            )
    running = [s for s in state.suspensions if s.start <= day < s.end] if state.suspensions else None
    if running:
        until = running[0].end
        chained = True
        while chained:
            chained = False
            for s in state.suspensions:
                if s.start == until and s.end > until:
                    until, chained = s.end, True
        return Eligibility(
            at=day,
            eligible=False,
            status="suspended",
            reason=f"eligibility suspended from {running[0].start.isoformat()} until {until.isoformat()} "
            "(docs/rules.md rules 10, 11, 15)",
            until=until,
        )
    covering = [
        s
        for s in spans
        if s.covers(day) and (institution_code is None or s.institution_code == institution_code)
    ]
    if covering:
        # the active status ends when every covering registration has ended (never, if one is open)
        # or, first, when a suspension or termination already decided but starting later begins
        ends = [s.end for s in covering if s.end is not None]
        changes = [max(ends)] if len(ends) == len(covering) else []
        changes += [s.start for s in state.suspensions if s.start > day]
        changes += [t.start for t in state.terminations if t.start > day]
        active_until = min(changes) if changes else None
        return Eligibility(
            at=day,
            eligible=True,
            status="active",
            reason="registered and not suspended or terminated",
            until=active_until,
        )
    where = f" at {institution_code}" if institution_code else ""
    return Eligibility(
        at=day,
        eligible=False,
        status="not_registered",
        reason=f"no registration{where} covers {day.isoformat()} (docs/rules.md rule 4)",
        until=_next_start(spans, day, institution_code),
    )


def _next_start(spans: list[RegistrationSpan], day: dt.date, institution_code: str | None) -> dt.date | None:
    """The start of the next recorded registration after `day` (at the institution asked about)."""
    return min(
        (
            s.start
            for s in spans
            if s.start > day and (institution_code is None or s.institution_code == institution_code)
        ),
        default=None,
    )


def next_change_after(state: PersonState, day: dt.date) -> dt.date | None:
    """The first day after `day` on which time alone may change the answer (a term starts or ends,
    a bar expires, a registration starts or ends): when the transitions sweep looks again."""
    candidates = [d for s in state.suspensions for d in (s.start, s.end)]
    candidates += [d for t in state.terminations for d in (t.start, t.barred_until)]
    candidates += [d for r in state.registrations if not r.void for d in (r.start, r.end) if d is not None]
    return min((d for d in candidates if d > day), default=None)


def transition_event(previous: str | None, current: str) -> str | None:
    """The change-feed event for a status change, if clients must be told."""
    if current == previous:
        return None
    if current in ("suspended", "terminated"):
        return f"eligibility.{current}"
    if previous in ("suspended", "terminated"):
        return "eligibility.reinstated"
    return None
