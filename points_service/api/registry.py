"""Registry: institutions, practitioners and registrations."""

from __future__ import annotations

from flask.views import MethodView

from ..clock import utc_now
from ..services import registry as svc
from .base import Blueprint, principal, request_id, runtime, session
from .idempotency import idempotent
from .schemas.registry import (
    InstitutionCreate,
    InstitutionRead,
    PractitionerCreate,
    PractitionerRead,
    RegistrationCreate,
    RegistrationCreated,
    RegistrationEnd,
)

blp = Blueprint(
    "registry", __name__, url_prefix="/v1", description="Institutions, practitioners, registrations"
)


@blp.route("/institutions")
class Institutions(MethodView):
    @blp.requires("institutions:write", write=True, operation_id="createInstitution")
    @idempotent
    @blp.arguments(InstitutionCreate)
    @blp.response(201, InstitutionRead, headers={"Location": {"schema": {"type": "string"}}})
    @blp.alt_response(200, schema=InstitutionRead, description="The same institution posted again")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data):
        """Create an institution"""
        result = svc.create_institution(
            session(), principal(), svc.CreateInstitution(**data), now=utc_now(), request_id=request_id()
        )
        return (
            result.value,
            (201 if result.created else 200),
            {"Location": f"/v1/institutions/{result.value.code}"},
        )


@blp.route("/institutions/<code>")
class InstitutionByCode(MethodView):
    @blp.requires("institutions:read", operation_id="getInstitution")
    @blp.response(200, InstitutionRead)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, code):
        """Read an institution"""
        return svc.get_institution(session(), principal(), code)


@blp.route("/practitioners")
class Practitioners(MethodView):
    @blp.requires("practitioners:write", write=True, operation_id="createPractitioner")
    @idempotent
    @blp.arguments(PractitionerCreate)
    @blp.response(201, PractitionerRead, headers={"Location": {"schema": {"type": "string"}}})
    @blp.alt_response(200, schema=PractitionerRead, description="The same practitioner posted again")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data):
        """Create a practitioner (the national ID is stored encrypted and returned masked)"""
        rt = runtime()
        result = svc.create_practitioner(
            session(),
            principal(),
            svc.CreatePractitioner(**data),
            keys=rt.pii,
            policies=rt.settings.policies,
            now=utc_now(),
            request_id=request_id(),
        )
        location = {"Location": f"/v1/practitioners/{result.value.practitioner.code}"}
        return result.value, (201 if result.created else 200), location


@blp.route("/practitioners/<code>")
class PractitionerByCode(MethodView):
    @blp.requires("practitioners:read", operation_id="getPractitioner")
    @blp.response(200, PractitionerRead)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, code):
        """Read a practitioner with their registrations"""
        return svc.read_practitioner(session(), principal(), code, now=utc_now())


@blp.route("/practitioners/<code>/registrations")
class Registrations(MethodView):
    @blp.requires("registrations:write", write=True, operation_id="createRegistration")
    @idempotent
    @blp.arguments(RegistrationCreate)
    @blp.response(201, RegistrationCreated, headers={"Location": {"schema": {"type": "string"}}})
    @blp.alt_response(200, schema=RegistrationCreated, description="The same registration posted again")
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(
        409,
        response="CONFLICT",
        description="Overlapping registration, or a re-registration bar runs (`barred_until` in the body)",
    )
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data, code):
        """Register a practitioner at an institution (登记备案)"""
        result = svc.register(
            session(),
            principal(),
            svc.Register(practitioner_code=code, **data),
            keys=runtime().pii,
            policies=runtime().settings.policies,
            now=utc_now(),
            request_id=request_id(),
        )
        return result.value, (201 if result.created else 200), {"Location": f"/v1/practitioners/{code}"}


@blp.route("/practitioners/<code>/registrations/<institution_code>/end")
class RegistrationEnding(MethodView):
    @blp.requires("registrations:write", write=True, operation_id="endRegistration")
    @idempotent
    @blp.arguments(RegistrationEnd)
    @blp.response(200, RegistrationCreated)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, data, code, institution_code):
        """End a practitioner's open registration at an institution"""
        return svc.end_registration(
            session(),
            principal(),
            svc.EndRegistration(practitioner_code=code, institution_code=institution_code, **data),
            policies=runtime().settings.policies,
            now=utc_now(),
            request_id=request_id(),
        )
