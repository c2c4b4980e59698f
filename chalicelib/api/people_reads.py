"""The people GET routes both read stages serve (reader: full values; masked: projections).

Same paths, parameters and answer shapes in both (``contract``), so a support tool
switches stages, not code. Query strings become typed values here.
"""

from __future__ import annotations

from collections.abc import Callable

from chalice import Blueprint, IAMAuthorizer, Response

from chalicelib.api import contract, views
from chalicelib.api.contract import FIELDS, IDS, LIMIT, NEXT, PEOPLE, PERSON, Operation
from chalicelib.api.http import etag, guarded, json_response
from chalicelib.domain.validation import PERSON_FIELDS
from chalicelib.service.people import PeopleReads
from chalicelib.support.audit import Actor
from chalicelib.support.errors import ValidationError


def add_people_routes(
    bp: Blueprint, service: Callable[[], PeopleReads], operation_of: Callable[[str], Operation]
) -> None:
    """Register ``GET PERSON`` and ``GET PEOPLE`` (page or ``ids=`` multi-get) on ``bp``."""
    auth = IAMAuthorizer()

    def actor() -> Actor:
        """The SigV4 caller API Gateway authenticated (anonymous locally)."""
        return Actor.from_request_context(bp.current_request.context)

    def params(path: str) -> dict[str, str]:
        return contract.known_query(operation_of(path), bp.current_request.query_params)

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
