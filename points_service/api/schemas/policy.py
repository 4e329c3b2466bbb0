from __future__ import annotations

from marshmallow import fields

from ..base import BaseSchema


class ProfileRead(BaseSchema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    provinces = fields.List(fields.String(), required=True)
    effective_from = fields.Date(required=True)
    sources = fields.List(fields.String(), required=True)
    bands = fields.Dict(keys=fields.String(), values=fields.List(fields.Integer()), required=True)
    catalogue = fields.List(fields.Dict(), required=True)
    measures = fields.List(fields.Dict(), required=True)
    cumulative_suspension_months = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    single_event_suspension_months = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    termination_points = fields.Integer(required=True)
    cumulative_bar_years = fields.Integer(required=True)
    single_event_bar_years = fields.Integer(required=True)
    repair = fields.Dict(required=True)
    appeal_window_working_days = fields.Integer(required=True)


class PolicyRead(BaseSchema):
    default_profile = fields.String(required=True)
    profiles = fields.List(fields.Nested(ProfileRead), required=True)


class HealthRead(BaseSchema):
    status = fields.String(required=True)
