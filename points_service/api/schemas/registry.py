from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from ...rules.policy import CATEGORIES, INSTITUTION_KINDS
from ..base import BaseSchema

# a list, not validate.And: apispec renders each validator of a list (minLength, maxLength, pattern)
# and nothing of an And, which left openapi.yaml allowing any string (BUG-5)
CODE = [validate.Length(min=1, max=64), validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]


class InstitutionCreate(BaseSchema):
    code = fields.String(required=True, validate=CODE)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    kind = fields.String(required=True, validate=validate.OneOf(INSTITUTION_KINDS))
    region_code = fields.String(
        required=True,
        validate=validate.Regexp(r"^\d{6}$", error="a 6-digit region code (行政区划代码)"),
        metadata={"description": "first two digits are the province (13 Hebei, 63 Qinghai)"},
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
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
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
    code = fields.String(required=True)
    name = fields.String(required=True)
    category = fields.String(required=True)
    id_number = fields.String(required=True, metadata={"description": "masked, e.g. 1301**********123X"})
    created_at = fields.AwareDateTime(required=True)
    registrations = fields.List(fields.Nested(RegistrationRead), required=True)


class RegistrationCreate(BaseSchema):
    institution_code = fields.String(required=True, validate=CODE)
    start_date = fields.Date(required=True)


class RegistrationEnd(BaseSchema):
    end_date = fields.Date(required=True, metadata={"description": "exclusive: the first day not registered"})
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class RegistrationCreated(RegistrationRead):
    practitioner_code = fields.String(required=True)


__all__ = ["ma"]
