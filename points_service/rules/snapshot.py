"""The materialised snapshot (practitioner_state.state): a person's derived state as plain JSON-ready
mappings, and back. Compact lists rather than objects, since a roster or batch decodes thousands.

The form is the one msgspec gives the derived values (rules.standing): the parts declared
`array_like` are arrays of their fields in order, the others objects, dates ISO strings. So the
values' declarations are the format, written down once, and decoding is one call into C.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from .standing import PersonState, RegistrationSpan, Suspension, Termination

_ENCODER = msgspec.json.Encoder()


def state_to_mapping(state: PersonState) -> dict[str, Any]:
    """The JSON-ready mapping stored for `state`: lists and dicts of str, int and None, as JSON
    gives them back, so a stored snapshot compares equal to a fresh one."""
    mapping: dict[str, Any] = msgspec.json.decode(_ENCODER.encode(state))
    return mapping


def state_from_mapping(data: Mapping[str, Any]) -> PersonState:
    return msgspec.convert(data, PersonState)


class _EligibilityParts(msgspec.Struct, frozen=True):
    """The parts of a snapshot that eligibility reads; the others are skipped, not decoded."""

    suspensions: tuple[Suspension, ...] = ()
    terminations: tuple[Termination, ...] = ()
    registrations: tuple[RegistrationSpan, ...] = ()


_ELIGIBILITY_PARTS = msgspec.json.Decoder(_EligibilityParts)


def eligibility_state_from_json(text: str | bytes) -> PersonState:
    """Only what eligibility (rule 18) reads, from the snapshot's JSON text: registrations,
    suspensions and terminations. A batch or a roster decodes thousands of snapshots to answer one
    question each; the other parts are skipped unparsed, and points, measures and repairs left empty,
    so this state answers `eligibility_on` and nothing else."""
    parts = _ELIGIBILITY_PARTS.decode(text)
    return PersonState(
        suspensions=parts.suspensions, terminations=parts.terminations, registrations=parts.registrations
    )
