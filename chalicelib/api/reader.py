"""Read routes. This blueprint is registered only in the ``reader`` stage.

Query strings become typed values here, by the rules of ``contract``; the service
never sees a raw parameter.
"""

from __future__ import annotations

from collections.abc import Callable

from chalice import Blueprint, IAMAuthorizer, Response

from chalicelib import models
from chalicelib.api import contract, views
from chalicelib.api.contract import (
    FIELDS,
    IDS,
    LIMIT,
    NEXT,
    PEOPLE,
    PEOPLE_SEARCH,
    PERSON,
    SECRET,
    SECRET_VERSIONS,
    VERSION,
)
from chalicelib.api.http import body_bytes, etag, guarded, json_response, parse_json_body
from chalicelib.audit import Actor
from chalicelib.errors import ValidationError
from chalicelib.models import PERSON_FIELDS
from chalicelib.service import ReaderService


def reader_blueprint(service: Callable[[], ReaderService]) -> Blueprint:
    bp = Blueprint(__name__)
    auth = IAMAuthorizer()

    def actor() -> Actor:
        """The SigV4 caller API Gateway authenticated (anonymous locally)."""
        return Actor.from_request_context(bp.current_request.context)

    def params(path: str) -> dict[str, str]:
        return contract.known_query(contract.operation(path, "GET"), bp.current_request.query_params)

    def fields(p: dict[str, str]) -> tuple[str, ...]:
        return FIELDS.parse(p[FIELDS.name]) if FIELDS.name in p else PERSON_FIELDS

    @bp.route(PERSON, methods=["GET"], authorizer=auth)
    @guarded
    def get_person(customer_id: str, person_id: str) -> Response:
        p = params(PERSON)
        view = service().get_person(customer_id, person_id, fields(p), actor=actor())
        return json_response(200, views.person(view), {"ETag": etag(view.version)})

    @bp.route(PEOPLE, methods=["GET"], authorizer=auth)
    @guarded
    def list_people(customer_id: str) -> Response:
        p = params(PEOPLE)
        if IDS.name in p:
            # Multi-get: one BatchGetItem for the listed ids instead of N single reads.
            if NEXT.name in p or LIMIT.name in p:
                raise ValidationError("ids cannot be combined with next or limit", field=IDS.name)
            batch = service().get_people(customer_id, IDS.parse(p[IDS.name]), fields(p), actor=actor())
            return json_response(200, views.people_batch(batch))
        limit = LIMIT.parse(p[LIMIT.name]) if LIMIT.name in p else contract.DEFAULT_PAGE_SIZE
        token = NEXT.parse(p[NEXT.name]) if NEXT.name in p else None
        page = service().list_people(customer_id, limit, token, fields(p), actor=actor())
        return json_response(200, views.people_page(page))

    @bp.route(PEOPLE_SEARCH, methods=["POST"], authorizer=auth)
    @guarded
    def search_people(customer_id: str) -> Response:
        # POST: the email travels in the body, never in a URL (access logs, traces).
        op = contract.operation(PEOPLE_SEARCH, "POST")
        contract.known_query(op, bp.current_request.query_params)
        email, wanted = models.parse_search(parse_json_body(body_bytes(bp.current_request), op.max_body_bytes))
        found = service().search_people(customer_id, email, wanted, actor=actor())
        return json_response(200, views.people_found(found))

    @bp.route(SECRET, methods=["GET"], authorizer=auth)
    @guarded
    def get_secret(customer_id: str, secret_id: str) -> Response:
        p = params(SECRET)
        version = VERSION.parse(p[VERSION.name]) if VERSION.name in p else None
        secret = service().get_secret(customer_id, secret_id, version, actor=actor())
        return json_response(200, views.secret(secret), {"ETag": etag(secret.version)})

    @bp.route(SECRET_VERSIONS, methods=["GET"], authorizer=auth)
    @guarded
    def secret_versions(customer_id: str, secret_id: str) -> Response:
        params(SECRET_VERSIONS)
        versions = service().secret_versions(customer_id, secret_id, actor=actor())
        return json_response(200, views.secret_versions(secret_id, versions))

    return bp
