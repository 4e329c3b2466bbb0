"""Policy profiles as frozen data (docs/rules.md §2, §3, §4, §6).

Profiles are parsed from mappings (read from TOML by settings), so this module does no I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

RESPONSIBILITIES = ("general", "important", "main")
ADJUSTMENTS = ("mitigated", "aggravated")
CATEGORIES = (
    "physician",
    "nurse",
    "pharmacist",
    "technician",
    "settlement_reviewer",
    "pharmacy_principal",
    "pharmacy_staff",
)
INSTITUTION_KINDS = ("medical_institution", "retail_pharmacy")
REPAIR_ACTIVITIES = ("online_study", "offline_training", "policy_promotion", "inspection_participation")
# rule 13: the order of tiers; talks and notices are measures, the last two are sanctions
TIERS = ("none", "institution_talk", "agency_talk", "public_notice", "suspension", "termination")
MEASURE_KINDS = ("institution_talk", "agency_talk", "public_notice")


class PolicyError(ValueError):
    """A profile or an input breaks the policy; the message names the rule."""

    def __init__(self, message: str, *, rule: str, field: str | None = None):
        super().__init__(message)
        self.rule = rule
        self.field = field


def tier_rank(tier: str) -> int:
    return TIERS.index(tier)


@dataclass(frozen=True)
class Behaviour:
    code: str
    band: int
    text: str


@dataclass(frozen=True)
class MeasureThreshold:
    low: int
    high: int
    kind: str


@dataclass(frozen=True)
class KindCap:
    activities: frozenset[str]
    cap: int


@dataclass(frozen=True)
class RepairRules:
    credits: Mapping[str, int]
    yearly_cap: int
    points_per_month: int
    single_event_termination_repairable: bool
    kind_caps: tuple[KindCap, ...]


@dataclass(frozen=True)
class Policy:
    id: str
    name: str
    provinces: frozenset[str]
    effective_from: dt.date
    sources: tuple[str, ...]
    bands: Mapping[int, tuple[int, int, int]]
    min_points: int
    max_points: int
    catalogue: Mapping[str, Behaviour]
    measures: tuple[MeasureThreshold, ...]
    cumulative_suspension_months: Mapping[int, int]
    single_event_suspension_months: Mapping[int, int]
    termination_points: int
    cumulative_bar_years: int
    single_event_bar_years: int
    repair: RepairRules
    appeal_window_working_days: int

    # -- rule 7 and 8 ------------------------------------------------------------------------
    def behaviour(self, code: str) -> Behaviour:
        try:
            return self.catalogue[code]
        except KeyError:
            raise PolicyError(
                f"unknown behaviour code {code!r}", rule="docs/rules.md rule 7", field="behaviour_code"
            ) from None

    def allowed_points(self, code: str, adjustment: str | None) -> tuple[int, int]:
        """The inclusive range of points an inspector may give (rule 8)."""
        band = self.behaviour(code).band
        if adjustment == "mitigated":
            band = max(band - 1, min(self.bands))
        elif adjustment == "aggravated":
            band = min(band + 1, max(self.bands))
        low, _, high = self.bands[band]
        return max(low, self.min_points), min(high, self.max_points)

    def points_for(
        self, code: str, responsibility: str, *, points: int | None = None, adjustment: str | None = None
    ) -> int:
        """Points of one decision: the default for code + responsibility, or explicit points in the band."""
        if responsibility not in RESPONSIBILITIES:
            raise PolicyError(
                f"responsibility must be one of {', '.join(RESPONSIBILITIES)}",
                rule="docs/rules.md rule 7",
                field="responsibility",
            )
        if adjustment is not None and adjustment not in ADJUSTMENTS:
            raise PolicyError(
                f"adjustment must be one of {', '.join(ADJUSTMENTS)}",
                rule="docs/rules.md rule 8",
                field="adjustment",
            )
        low, high = self.allowed_points(code, adjustment)
        if points is None:
            if adjustment is not None:
                raise PolicyError(
                    "an adjusted decision must give explicit points inside the moved band",
                    rule="docs/rules.md rule 8",
                    field="points",
                )
            return self.bands[self.behaviour(code).band][RESPONSIBILITIES.index(responsibility)]
        if not low <= points <= high:
            raise PolicyError(
                f"points must lie between {low} and {high} for {code}"
                + (f" ({adjustment})" if adjustment else ""),
                rule="docs/rules.md rule 8",
                field="points",
            )
        return points

    # -- rule 10, 11, 25 ---------------------------------------------------------------------
    def measure_for(self, total: int) -> str | None:
        for threshold in self.measures:
            if threshold.low <= total <= threshold.high:
                return threshold.kind
        return None

    def cumulative_tier(self, total: int) -> str:
        if total >= self.termination_points:
            return "termination"
        if self.cumulative_months(total):
            return "suspension"
        return self.measure_for(total) or "none"

    def single_event_tier(self, points: int) -> str:
        if points >= self.termination_points:
            return "termination"
        if self.single_event_months(points):
            return "suspension"
        return "none"

    def cumulative_months(self, total: int) -> int:
        if total >= self.termination_points:
            return 0
        return _threshold_lookup(self.cumulative_suspension_months, total)

    def single_event_months(self, points: int) -> int:
        if points >= self.termination_points:
            return 0
        return _threshold_lookup(self.single_event_suspension_months, points)

    def lowest_sanction_points(self) -> int:
        """The fewest points at which this profile suspends or terminates, by a year's total or by
        one event (rules 10, 11): a year whose decisions add up to less reaches a measure at most."""
        cumulative = [t for t, months in self.cumulative_suspension_months.items() if months > 0]
        single = [t for t, months in self.single_event_suspension_months.items() if months > 0]
        return min([self.termination_points, *cumulative, *single])

    def to_mapping(self) -> dict[str, Any]:
        """The profile as plain data, for GET /v1/policy."""
        return {
            "id": self.id,
            "name": self.name,
            "provinces": sorted(self.provinces),
            "effective_from": self.effective_from,
            "sources": list(self.sources),
            "bands": {str(b): list(p) for b, p in sorted(self.bands.items())},
            "catalogue": [
                {"code": b.code, "band": b.band, "text": b.text}
                for b in sorted(self.catalogue.values(), key=_code)
            ],
            "measures": [{"from": m.low, "to": m.high, "kind": m.kind} for m in self.measures],
            "cumulative_suspension_months": {
                str(k): v for k, v in sorted(self.cumulative_suspension_months.items())
            },
            "single_event_suspension_months": {
                str(k): v for k, v in sorted(self.single_event_suspension_months.items())
            },
            "termination_points": self.termination_points,
            "cumulative_bar_years": self.cumulative_bar_years,
            "single_event_bar_years": self.single_event_bar_years,
            "repair": {
                "credits": dict(sorted(self.repair.credits.items())),
                "yearly_cap": self.repair.yearly_cap,
                "points_per_month": self.repair.points_per_month,
                "single_event_termination_repairable": self.repair.single_event_termination_repairable,
                "kind_caps": [
                    {"activities": sorted(c.activities), "cap": c.cap} for c in self.repair.kind_caps
                ],
            },
            "appeal_window_working_days": self.appeal_window_working_days,
        }


def _code(behaviour: Behaviour) -> str:
    return behaviour.code


def _threshold_lookup(table: Mapping[int, int], value: int) -> int:
    """Months for the highest threshold not above value (a table keyed by points)."""
    months = 0
    for threshold in sorted(table):
        if value >= threshold:
            months = table[threshold]
    return months


def parse_catalogue(mapping: Mapping[str, Any]) -> dict[str, Behaviour]:
    return {
        code: Behaviour(code=code, band=int(item["band"]), text=str(item["text"]))
        for code, item in mapping["behaviours"].items()
    }


def parse_profile(mapping: Mapping[str, Any], catalogue: Mapping[str, Behaviour]) -> Policy:
    """Turn one profile mapping into a frozen Policy, checking it is coherent."""
    scoring = mapping["scoring"]
    sanctions = mapping["sanctions"]
    repair = mapping["repair"]
    bands: dict[int, tuple[int, int, int]] = {}
    for key, value in scoring["bands"].items():
        points = [int(p) for p in value]
        if len(points) != 3 or points != sorted(points):  # one figure per responsibility (rule 8)
            raise ValueError(f"profile {mapping['id']}: band {key} needs three ascending point values")
        bands[int(key)] = (points[0], points[1], points[2])
    for behaviour in catalogue.values():
        if behaviour.band not in bands:
            raise ValueError(f"profile {mapping['id']}: behaviour {behaviour.code} names unknown band")
    measures = tuple(
        MeasureThreshold(low=int(m["from"]), high=int(m["to"]), kind=str(m["kind"]))
        for m in mapping.get("measures", [])
    )
    for m in measures:
        if m.kind not in MEASURE_KINDS:
            raise ValueError(f"profile {mapping['id']}: unknown measure kind {m.kind}")
    credits = {str(k): int(v) for k, v in repair["credits"].items()}
    unknown = set(credits) - set(REPAIR_ACTIVITIES)
    if unknown:
        raise ValueError(f"profile {mapping['id']}: unknown repair activities {sorted(unknown)}")
    effective = mapping["effective_from"]
    if not isinstance(effective, dt.date):
        effective = dt.date.fromisoformat(str(effective))
    return Policy(
        id=str(mapping["id"]),
        name=str(mapping["name"]),
        provinces=frozenset(str(p) for p in mapping.get("provinces", [])),
        effective_from=effective,
        sources=tuple(str(s) for s in mapping.get("sources", [])),
        bands=bands,
        min_points=int(scoring["min_points"]),
        max_points=int(scoring["max_points"]),
        catalogue=dict(catalogue),
        measures=measures,
        cumulative_suspension_months={
            int(k): int(v) for k, v in sanctions["cumulative_suspension_months"].items()
        },
        single_event_suspension_months={
            int(k): int(v) for k, v in sanctions["single_event_suspension_months"].items()
        },
        termination_points=int(sanctions["termination_points"]),
        cumulative_bar_years=int(sanctions["cumulative_bar_years"]),
        single_event_bar_years=int(sanctions["single_event_bar_years"]),
        repair=RepairRules(
            credits=credits,
            yearly_cap=int(repair["yearly_cap"]),
            points_per_month=int(repair["points_per_month"]),
            single_event_termination_repairable=bool(repair["single_event_termination_repairable"]),
            kind_caps=tuple(
                KindCap(activities=frozenset(c["activities"]), cap=int(c["cap"]))
                for c in repair.get("kind_caps", [])
            ),
        ),
        appeal_window_working_days=int(mapping["appeals"]["window_working_days"]),
    )


@dataclass(frozen=True)
class PolicySet:
    """Every loaded profile plus the deployment default (rule 27)."""

    profiles: Mapping[str, Policy]
    default_id: str

    def __post_init__(self) -> None:
        if self.default_id not in self.profiles:
            raise ValueError(f"default profile {self.default_id!r} is not loaded")

    def get(self, profile_id: str) -> Policy:
        return self.profiles[profile_id]

    def profile_for(self, region_code: str, day: dt.date) -> Policy:
        """The profile in force on `day` for the province of `region_code` (rule 27).

        A province's own profile applies from its effective date; otherwise the default does.
        """
        province = region_code[:2]
        own = _latest_in_force((p for p in self.profiles.values() if province in p.provinces), day)
        if own is not None:
            return own
        default = self.profiles[self.default_id]
        fallback = _latest_in_force(
            (p for p in self.profiles.values() if p.provinces == default.provinces), day
        )
        if fallback is None:
            raise PolicyError(
                f"no profile is in force on {day.isoformat()} (the scheme starts {default.effective_from})",
                rule="docs/rules.md rule 27",
                field="decided_on",
            )
        return fallback

    def in_force(self, day: dt.date) -> list[Policy]:
        """The newest profile of each jurisdiction in force on `day`."""
        seen: dict[frozenset[str], Policy] = {}
        for policy in sorted(self.profiles.values(), key=lambda p: p.effective_from):
            if policy.effective_from <= day:
                seen[policy.provinces] = policy
        return sorted(seen.values(), key=lambda p: p.id)


def _latest_in_force(candidates: Iterable[Policy], day: dt.date) -> Policy | None:
    in_force = [p for p in candidates if p.effective_from <= day]
    return max(in_force, key=lambda p: p.effective_from, default=None)
