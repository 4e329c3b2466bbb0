"""What a well-formed value of the registry looks like (docs/rules.md rules 2, 3, 6): pure checks that
the API schemas and the CSV import share, each returning the problem in words or None."""

from __future__ import annotations

import datetime as dt
import re

# GB/T 2260: the first two digits of an administrative division code name the province-level unit
PROVINCES: dict[str, str] = {
    "11": "Beijing",
    "12": "Tianjin",
    "13": "Hebei",
    "14": "Shanxi",
    "15": "Inner Mongolia",
    "21": "Liaoning",
    "22": "Jilin",
    "23": "Heilongjiang",
    "31": "Shanghai",
    "32": "Jiangsu",
    "33": "Zhejiang",
    "34": "Anhui",
    "35": "Fujian",
    "36": "Jiangxi",
    "37": "Shandong",
    "41": "Henan",
    "42": "Hubei",
    "43": "Hunan",
    "44": "Guangdong",
    "45": "Guangxi",
    "46": "Hainan",
    "50": "Chongqing",
    "51": "Sichuan",
    "52": "Guizhou",
    "53": "Yunnan",
    "54": "Tibet",
    "61": "Shaanxi",
    "62": "Gansu",
    "63": "Qinghai",
    "64": "Ningxia",
    "65": "Xinjiang",
    "71": "Taiwan",
    "81": "Hong Kong",
    "82": "Macao",
}

# No decision, registration or repair of this scheme predates it; the floor catches typed years
# (0001, 1026) that would otherwise be stored as history. The ceiling keeps date arithmetic (a
# 3-year bar, month ends) far from the calendar's end.
EARLIEST_DATE = dt.date(1990, 1, 1)
LATEST_DATE = dt.date(2999, 12, 31)
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_REGION_CODE = re.compile(r"\d{6}")
_UNPAIRED_SURROGATE = re.compile("[\ud800-\udfff]")


def code_problem(value: str) -> str | None:
    """A code (an institution's, a person's) as the API's schemas take it: 1-64 characters of a
    small ASCII alphabet, so that it reads the same in a URL, a CSV file and a log line."""
    if not _CODE.fullmatch(value):
        return "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
    return None


def region_code_problem(value: str) -> str | None:
    """Rule 3: a 6-digit code (行政区划代码) whose first two digits are a province of GB/T 2260."""
    if not _REGION_CODE.fullmatch(value):
        return "a 6-digit region code (行政区划代码), e.g. 130100"
    if value[:2] not in PROVINCES:
        return f"{value[:2]} is not a province prefix of GB/T 2260 (e.g. 13 Hebei, 63 Qinghai)"
    return None


def parse_legal_date(value: str) -> dt.date | str:
    """A legal date written YYYY-MM-DD, between 1990-01-01 and 2999-12-31; or the problem in words."""
    if not _ISO_DATE.fullmatch(value):
        return "a date written YYYY-MM-DD"
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        return "not a date of the calendar"
    if day < EARLIEST_DATE:
        return f"not before {EARLIEST_DATE.isoformat()}"
    if day > LATEST_DATE:
        return f"not after {LATEST_DATE.isoformat()}"
    return day


def identifier_problem(value: str) -> str | None:
    """An identifier (a case number, an evidence reference) is printable text that is not blank and
    has no surrounding spaces: two spellings of one case must not become two cases."""
    if not value.strip():
        return "must not be blank"
    if value != value.strip():
        return "must not start or end with spaces"
    if not value.isprintable():
        return "must hold printable characters only (no control, format or zero-width characters)"
    return None


def name_problem(value: str) -> str | None:
    """A name as people write it: printable and not blank (inner spaces allowed)."""
    if not value.strip():
        return "must not be blank"
    if not value.isprintable():
        return "must hold printable characters only (no control, format or zero-width characters)"
    return None


def text_problem(value: str) -> str | None:
    """Free text (a reason, a note) may span lines but holds nothing a database cannot store."""
    if "\x00" in value:
        return "must not contain a NUL character"
    if _UNPAIRED_SURROGATE.search(value):
        return "must not contain an unpaired UTF-16 surrogate"
    return None


# GB 11643-1999: ISO 7064 MOD 11-2 over the first 17 digits, weight_i = 2**(17 - i) mod 11
_GB11643_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_GB11643_CHARACTERS = "10X98765432"


def gb11643_check_character(first17: str) -> str:
    """The 18th character of a national ID number (身份证号) whose first 17 are these ASCII digits."""
    total = sum(int(digit) * weight for digit, weight in zip(first17, _GB11643_WEIGHTS, strict=True))
    return _GB11643_CHARACTERS[total % 11]


def with_check_character(first17: str) -> str:
    """The whole national ID number: the 17 digits and their check character."""
    return first17 + gb11643_check_character(first17)
