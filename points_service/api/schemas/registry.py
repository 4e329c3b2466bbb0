from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from ...rules.policy import CATEGORIES, INSTITUTION_KINDS
from ..base import BaseSchema
from .fields import CODE, LegalDate, Name, RegionCode, Text


class InstitutionCreate(BaseSchema):
    code = fields.String(required=True, validate=CODE)
    name = Name(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(INSTITUTION_KINDS))
    region_code = RegionCode(
        required=True,
        metadata={"description": "GB/T 2260: the first two digits are the province (13 Hebei, 63 Qinghai)"},
    )


class InstitutionRead(BaseSchema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    kind = fields.String(required=True)
    region_code = fields.String(required=True)
    province = fields.Function(lambda i: i.region_code[:2])
    created_at = fields.AwareDateTime(required=True)


class PractitionerCreate(BaseSchema):
    code = fields.String(required=True, validate=CODE, metadata={"description": "national person code"})
    name = Name(required=True)
    id_number = fields.String(
        required=True,
        validate=validate.Length(min=15, max=32),
        metadata={"description": "身份证号 (GB 11643)"},
    )
    category = fields.String(required=True, validate=validate.OneOf(CATEGORIES))


class RegistrationRead(BaseSchema):
    id = fields.Integer(required=True)
    institution_code = fields.String(required=True)
    start_date = fields.Date(required=True)
    end_date = fields.Date(
        allow_none=True, metadata={"description": "exclusive: the first day not registered"}
    )
    ended_by = fields.String(allow_none=True, validate=validate.OneOf(["registry", "termination"]))
    end_reason = fields.String(allow_none=True)
    active = fields.Boolean(required=True, metadata={"description": "covers today"})


class PractitionerRead(BaseSchema):
    """A `Person`: the practitioner and the registrations the reader may see."""

    code = fields.String(required=True, attribute="practitioner.code")
    name = fields.String(required=True, attribute="practitioner.name")
    category = fields.String(required=True, attribute="practitioner.category")
    id_number = fields.String(
        required=True,
        attribute="practitioner.national_id_masked",
        metadata={"description": "masked to its first and last character, e.g. 1****************X"},
    )
    created_at = fields.AwareDateTime(required=True, attribute="practitioner.created_at")
    registrations = fields.List(fields.Nested(RegistrationRead), required=True)


class RegistrationCreate(BaseSchema):
    institution_code = fields.String(required=True, validate=CODE)
    start_date = LegalDate(required=True)
    id_number = fields.String(
        validate=validate.Length(min=1, max=32),
        metadata={
            "description": "required for an hr_system key: the person's national ID number (身份证号); "
            "the code and the number must belong together, or the answer is one generic 422"
        },
    )


class RegistrationEnd(BaseSchema):
    end_date = LegalDate(required=True, metadata={"description": "exclusive: the first day not registered"})
    reason = Text(required=True, max_length=500, required_text=True)


class RegistrationCreated(RegistrationRead):
    practitioner_code = fields.String(required=True)


__all__ = ["ma"]
