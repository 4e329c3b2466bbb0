"""An import's CSV file, read line by line and never whole, and the problems found in its rows.

A line that cannot be decoded or holds a NUL becomes a bad row, not a crash; a header that cannot
be used refuses the whole file. Every message that may quote a value from the file passes through
the log redactor, so a national ID is never repeated in clear, whatever column it turned up in.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...logs import redact

KINDS = ("institutions", "practitioners", "registrations", "violations")
# (required, optional) columns of each kind of file, in the order the checks take them
COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "institutions": (("code", "name", "kind", "region_code"), ()),
    "practitioners": (("code", "name", "id_number", "category"), ()),
    "registrations": (("practitioner_code", "institution_code", "start_date"), ("end_date",)),
    "violations": (
        (
            "case_ref",
            "practitioner_code",
            "institution_code",
            "behaviour_code",
            "responsibility",
            "occurred_on",
            "decided_on",
        ),
        ("points", "adjustment", "adjustment_reason", "description"),
    ),
}

# (phase, bytes read, lines read) of a pass over the file; called every few thousand lines
Progress = Callable[[str, int, int], None]
_PROGRESS_EVERY = 4096  # lines

# (physical line number of a data row, its fields stripped, in COLUMNS order)
Record = tuple[int, list[str]]


@dataclass(frozen=True)
class Imported:
    """What came of a file's rows."""

    rows: int | None  # imported (with dry_run: would be); None: refused, nothing imported
    existing: int = 0  # equal to what is stored, skipped (skip_existing)


class ImportRefused(Exception):
    """The file itself cannot be read (no header, missing columns): nothing can be imported."""

    def __init__(self, line: int, message: str):
        message = redact(message)
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


class RowErrors:
    """Problems by physical line number; a line may have several."""

    def __init__(self) -> None:
        self.by_line: dict[int, list[str]] = {}

    def add(self, line: int, message: str) -> None:
        self.by_line.setdefault(line, []).append(redact(message))

    def __contains__(self, line: int) -> bool:
        return line in self.by_line

    def __bool__(self) -> bool:
        return bool(self.by_line)

    def sorted(self) -> list[tuple[int, str]]:
        return [(line, "; ".join(messages)) for line, messages in sorted(self.by_line.items())]


def encoding_problem(encoding: str) -> str | None:
    """Why a file cannot be read in `encoding`, or None. The file is split into lines as bytes, so
    the encoding must spell newline, comma and quote as ASCII does (UTF-8, GBK and GB18030 do)."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        return f"unknown encoding {encoding!r} (e.g. utf-8, gbk, gb18030)"
    if any(c.encode(name) != c.encode("ascii") for c in '\n\r,"'):
        return f"{encoding} cannot be read line by line; convert the file to UTF-8"
    return None


def _encoding_name(encoding: str) -> str:
    name = codecs.lookup(encoding).name
    return "UTF-8" if name == "utf-8" else name.upper()


@dataclass
class CsvFile:
    """A CSV file read line by line; lines that cannot be decoded or hold a NUL are remembered (by
    physical line number) so that their row becomes a bad row."""

    path: Path
    encoding: str = "utf-8"
    progress: Progress | None = None
    bad_lines: dict[int, str] = field(default_factory=dict)

    def lines(self, phase: str) -> Iterator[str]:
        encoding, bad, progress = self.encoding, self.bad_lines, self.progress
        undecodable = f"not valid {_encoding_name(encoding)}"
        done = number = 0
        with self.path.open("rb") as raw:
            for number, line in enumerate(raw, start=1):
                try:
                    text = line.decode(encoding)
                except UnicodeDecodeError:
                    bad[number] = undecodable
                    text = line.decode(encoding, "replace")
                if "\x00" in text:
                    bad[number] = "contains a NUL character, which no field may hold"
                if number == 1:
                    text = text.removeprefix("\ufeff")
                if progress is not None:
                    done += len(line)
                    if number % _PROGRESS_EVERY == 0:
                        progress(phase, done, number)
                yield text
        if progress is not None:
            progress(phase, done, number)

    def count_lines(self) -> int:
        """At least as many as the data rows, counted without holding the file."""
        count = 1
        with self.path.open("rb") as raw:
            for block in iter(lambda: raw.read(1 << 20), b""):
                count += block.count(b"\n")
        return count

    def undecodable(self) -> int:
        return sum(1 for reason in self.bad_lines.values() if reason.startswith("not valid"))

    def records(self, kind: str, errors: RowErrors, *, phase: str = "checking") -> Iterator[Record]:
        """The data rows of the file, with the header as line 1.

        The header is read before this returns, so a file that cannot be imported fails at once.
        """
        self.bad_lines.clear()
        reader = csv.reader(self.lines(phase))
        try:
            header = next(reader)
        except StopIteration:
            required = ",".join(COLUMNS[kind][0])
            raise ImportRefused(1, f"the file is empty: expected a header row {required}") from None
        except csv.Error as exc:
            raise ImportRefused(1, f"unreadable CSV: {exc}") from None
        if 1 in self.bad_lines:
            reason = self.bad_lines[1]
            hint = "; if the file is GBK, pass --encoding gbk" if reason.endswith("UTF-8") else ""
            raise ImportRefused(1, f"the header is {reason}{hint}")
        positions = _column_positions(kind, [h.strip().lower() for h in header])
        return self._rows(reader, positions, len(header), errors)

    def _rows(self, reader: Any, positions: list[int], width: int, errors: RowErrors) -> Iterator[Record]:
        bad = self.bad_lines
        in_order = positions == list(range(width))
        last = reader.line_num
        try:
            for row in reader:
                # a quoted field may span lines: the row is bad if any of its lines is
                line, last = last + 1, reader.line_num
                if bad and any(n in bad for n in range(line, last + 1)):
                    errors.add(line, next(bad[n] for n in range(line, last + 1) if n in bad))
                    continue
                if len(row) != width:
                    if not row or (len(row) == 1 and not row[0].strip()):
                        continue  # a blank line
                    errors.add(line, f"expected {width} fields, got {len(row)}")
                    continue
                if in_order:
                    yield line, [v.strip() for v in row]
                else:
                    yield line, [row[p].strip() if p >= 0 else "" for p in positions]
        except csv.Error as exc:
            raise ImportRefused(reader.line_num, f"unreadable CSV: {exc}") from None


def _column_positions(kind: str, names: list[str]) -> list[int]:
    """Where each column of COLUMNS[kind] stands in the header (-1: an optional one is absent)."""
    required, optional = COLUMNS[kind]
    expected = ",".join(required + tuple(f"[{o}]" for o in optional))
    if not set(names) & set(required + optional):
        # most likely a first data row: its values (a national ID, a name) are not repeated here
        raise ImportRefused(1, f"the first line is not a header; the file must start with {expected}")
    missing = [c for c in required if c not in names]
    unknown = [n for n in names if n not in required + optional]
    repeated = sorted({n for n in names if names.count(n) > 1})
    problems = []
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown column(s) {', '.join(repr(n[:40]) for n in unknown)}")
    if repeated:
        problems.append(f"repeated column(s) {', '.join(repeated)}")
    if problems:
        raise ImportRefused(1, "; ".join(problems) + f" (expected {expected})")
    return [names.index(c) for c in required] + [names.index(c) if c in names else -1 for c in optional]
