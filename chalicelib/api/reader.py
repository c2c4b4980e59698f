"""Read routes. This blueprint is registered only in the ``reader`` stage.

Query strings become typed values here, by the rules of ``contract``; the service
never sees a raw parameter.
"""

from __future__ import annotations

from collections.abc import Callable

from chalice import Blueprint, IAMAuthorizer, Response

from chalicelib.api import contract, views
from chalicelib.api.contract import (
    PEOPLE_SEARCH,
    SECRET,
    SECRET_VERSIONS,
    VERSION,
)
from chalicelib.api.http import body_bytes, etag, guarded, json_response, parse_json_body
from chalicelib.api.people_reads import add_people_routes
from chalicelib.domain import validation
from chalicelib.service import ReaderService
from chalicelib.support.audit import Actor


def reader_blueprint(service: Callable[[], ReaderService]) -> Blueprint:
    bp = Blueprint(__name__)
    auth = IAMAuthorizer()
    add_people_routes(bp, service, lambda path: contract.operation(path, "GET"))

    def actor() -> Actor:
        """The SigV4 caller API Gateway authenticated (anonymous locally)."""
        return Actor.from_request_context(bp.current_request.context)

    def params(path: str) -> dict[str, str]:
        return contract.known_query(contract.operation(path, "GET"), bp.current_request.query_params)

    @bp.route(PEOPLE_SEARCH, methods=["POST"], authorizer=auth)
    @guarded
    def search_people(customer_id: str) -> Response:
        # POST: the email travels in the body, never in a URL (access logs, traces).
        op = contract.operation(PEOPLE_SEARCH, "POST")
        contract.known_query(op, bp.current_request.query_params)
        email, wanted = validation.parse_search(parse_json_body(body_bytes(bp.current_request), op.max_body_bytes))
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
