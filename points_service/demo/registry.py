"""The demo's institutions, practitioners and registrations: drawn, then written in bulk."""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from ..persistence import pii
from ..persistence.copy import reserve_ids
from ..persistence.models import Practitioner
from ..rules import standing as rules
from ..rules.identifiers import with_check_character
from ..services.imports.institutions import write_institutions
from ..services.imports.practitioners import NewPractitioner, national_id_index, write_practitioners
from ..services.imports.registrations import write_registrations
from .seeding import DemoSummary, Seeding, person_code

# prefecture-level region codes (行政区划代码) and city names
_HEBEI = (
    ("130100", "石家庄"),
    ("130200", "唐山"),
    ("130300", "秦皇岛"),
    ("130400", "邯郸"),
    ("130500", "邢台"),
    ("130600", "保定"),
    ("130700", "张家口"),
    ("130800", "承德"),
    ("130900", "沧州"),
    ("131000", "廊坊"),
    ("131100", "衡水"),
)
_QINGHAI = (
    ("630100", "西宁"),
    ("630200", "海东"),
    ("632200", "海北"),
    ("632500", "海南州"),
    ("632800", "海西"),
)
_OTHERS = (
    ("110100", "北京"),
    ("120100", "天津"),
    ("310100", "上海"),
    ("440100", "广州"),
    ("510100", "成都"),
)
_DISTRICTS = ("02", "04", "05", "08", "21", "23", "27", "81")
_SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
_GIVEN = "伟芳娜秀敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志红玉兰文斌博宇浩然欣怡子涵梓萱晨阳"
_MEDICAL = (
    ("physician", 40),
    ("nurse", 38),
    ("technician", 10),
    ("pharmacist", 6),
    ("settlement_reviewer", 6),
)
_PHARMACY = (("pharmacy_principal", 15), ("pharmacist", 45), ("pharmacy_staff", 40))
_ID_SPACE_DAYS = 14_600  # birth dates 1960-01-01 .. 1999-12-21
ID_SPACE = _ID_SPACE_DAYS * 1000  # x a 3-digit sequence number
_ID_STEP = 7_654_321  # coprime with the space: person i -> a distinct (birth date, sequence)


# -- institutions and people -------------------------------------------------------------------------


def seed_institutions(session: Session, seeding: Seeding, count: int, summary: DemoSummary) -> list[float]:
    """Mostly Hebei, some Qinghai, a few elsewhere; hospitals and pharmacies. Answers how many
    staff each draws: hospitals weigh 10x a pharmacy, times a Pareto-ish size factor."""
    rng = seeding.rng
    for j in range(count):
        roll = rng.random()
        region, city = rng.choice(_HEBEI if roll < 0.8 else _QINGHAI if roll < 0.92 else _OTHERS)
        region = region[:4] + rng.choice(_DISTRICTS)
        medical = rng.random() < 0.8
        seeding.institutions.append(
            (
                _institution_code("H" if medical else "P", region, seeding.seed, j),
                _institution_name(rng, city, j, medical),
                "medical_institution" if medical else "retail_pharmacy",
                region,
            )
        )
    seeding.institution_ids = write_institutions(session, seeding.institutions, now=seeding.now)
    summary.institutions = count
    summary.example_institution = seeding.institutions[0][0]
    return [
        (10.0 if kind == "medical_institution" else 1.0) * rng.paretovariate(1.5)
        for _, _, kind, _ in seeding.institutions
    ]


def _institution_name(rng: random.Random, city: str, j: int, medical: bool) -> str:
    if not medical:
        return f"{city}{rng.choice('百济益大众康')}大药房第{j + 1}店"
    if rng.random() < 0.6:
        return f"{city}市第{j + 1}人民医院"
    return f"{city}{rng.choice('仁康济和安华')}医院{j + 1}院区"


def seed_practitioners(
    session: Session,
    seeding: Seeding,
    count: int,
    weights: Sequence[float],
    keys: pii.PiiKeys,
    summary: DemoSummary,
) -> None:
    """Each person gets a home institution, a category that fits it, and a valid national ID that
    no other person of the seed has; they are generated while the database ingests them."""
    rng = seeding.rng
    seeding.home = home = rng.choices(range(len(seeding.institutions)), weights=weights, k=count)
    index_of = national_id_index(keys)
    offset = rng.randrange(ID_SPACE)
    seeding.codes = [person_code(seeding.seed, i) for i in range(count)]
    staff = {
        "medical_institution": ([c for c, _ in _MEDICAL], [w for _, w in _MEDICAL]),
        "retail_pharmacy": ([c for c, _ in _PHARMACY], [w for _, w in _PHARMACY]),
    }

    def generated() -> Iterator[NewPractitioner]:
        for i in range(count):
            _, _, kind, region = seeding.institutions[home[i]]
            category = rng.choices(*staff[kind])[0]
            national_id = _national_id(region, (offset + i * _ID_STEP) % ID_SPACE)
            name = rng.choice(_SURNAMES) + "".join(rng.choices(_GIVEN, k=rng.choice((1, 2, 2))))
            yield NewPractitioner(seeding.codes[i], name, category, national_id, index_of(national_id))

    seeding.person_ids = reserve_ids(session, Practitioner, count)
    write_practitioners(
        session, zip(seeding.person_ids, generated(), strict=True), keys=keys, now=seeding.now
    )
    summary.practitioners = count
    summary.example_practitioner = seeding.codes[0]


def _national_id(region: str, slot: int) -> str:
    """The number of slot `slot` of the space: a birth date in 1960–1999 and a sequence number."""
    birth = dt.date(1960, 1, 1) + dt.timedelta(days=slot // 1000)
    return with_check_character(f"{region}{birth:%Y%m%d}{slot % 1000:03d}")


def _institution_code(prefix: str, region: str, seed: int, j: int) -> str:
    return f"{prefix}{region}-{seed}-{j:05d}"


# -- registrations ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Window:
    """The days (as ordinals) registrations are drawn from."""

    today: int
    early: int  # the first day of any registration
    settled: int  # the last start of a long-standing one: the end of the year before last
    recent: int  # the first day of last year
    late: int  # the last start of any: a month ago

    @classmethod
    def around(cls, today: dt.date) -> _Window:
        return cls(
            today=today.toordinal(),
            early=dt.date(2008, 1, 1).toordinal(),
            settled=dt.date(today.year - 2, 12, 31).toordinal(),
            recent=dt.date(today.year - 1, 1, 1).toordinal(),
            late=(today - dt.timedelta(days=30)).toordinal(),
        )


# (person index, institution index, start, end)
_Span = tuple[int, int, dt.date, dt.date | None]


def seed_registrations(session: Session, seeding: Seeding, summary: DemoSummary) -> None:
    """One at home; ~10 % also at a second institution in the province (多点执业); ~6 % an
    earlier, ended one elsewhere; ~2 % whose home registration has ended."""
    rng, window = seeding.rng, _Window.around(seeding.today)
    peers: dict[str, list[int]] = defaultdict(list)  # province -> institution indexes
    for j, (_, _, _, region) in enumerate(seeding.institutions):
        peers[region[:2]].append(j)
    spans: list[_Span] = []
    for i, j in enumerate(seeding.home):
        start, end = _home_span(rng, window)
        spans.append((i, j, start, end))
        other = _second_span(
            rng, j, start, window, peers[seeding.institutions[j][3][:2]], len(seeding.institutions)
        )
        if other is not None:
            spans.append((i, *other))
            if other[2] is None:
                summary.multi_site += 1
    ids = write_registrations(
        session,
        [(seeding.person_ids[i], seeding.institution_ids[j], start, end) for i, j, start, end in spans],
        actor=seeding.actor,
        now=seeding.now,
    )
    summary.registrations = len(spans)
    for rid, (i, j, start, end) in zip(ids, spans, strict=True):
        seeding.registrations_of[i].append(rules.Registration(rid, seeding.institutions[j][0], start, end))


def _home_span(rng: random.Random, window: _Window) -> tuple[dt.date, dt.date | None]:
    """Mostly long-standing, some started last year or this; a few ended since."""
    if rng.random() < 0.93:
        start = rng.randint(window.early, window.settled)
    else:
        start = rng.randint(window.recent, window.late)
    end = None
    if rng.random() < 0.02 and start + 60 < window.today:
        end = dt.date.fromordinal(rng.randint(max(start + 60, window.recent), window.today - 1))
    return dt.date.fromordinal(start), end


def _second_span(
    rng: random.Random, home: int, start: dt.date, window: _Window, peers: Sequence[int], institutions: int
) -> tuple[int, dt.date, dt.date | None] | None:
    """Another registration beside the one at `home`: at a peer in the province from some time
    after `start`, or an earlier, ended one anywhere; mostly none."""
    roll = rng.random()
    begun = start.toordinal()
    if roll < 0.10:
        other = rng.choice(peers)
        if other == home:
            return None
        second = min(begun + rng.randint(0, 1500), window.late)
        return other, dt.date.fromordinal(max(second, begun)), None
    if roll < 0.16 and begun - 800 > window.early:
        other = rng.randrange(institutions)
        if other == home:
            return None
        old_end = begun - rng.randint(0, 200)
        old_start = old_end - rng.randint(365, 2500)
        return other, dt.date.fromordinal(old_start), dt.date.fromordinal(old_end)
    return None
