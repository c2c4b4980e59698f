"""Read routes. This blueprint is registered only in the ``reader`` stage."""

from __future__ import annotations

from typing import Callable

from chalice import Blueprint, IAMAuthorizer, Response

from chalicelib.api.http import etag, guarded, json_response, parse_json_body, query
from chalicelib.audit import Actor
from chalicelib.errors import ValidationError
from chalicelib.service import ReaderService


SEARCH_BODY_MAX_BYTES = 4 * 1024


def reader_blueprint(service: Callable[[], ReaderService]) -> Blueprint:
    bp = Blueprint(__name__)
    auth = IAMAuthorizer()

    def actor() -> Actor:
        """The SigV4 caller API Gateway authenticated (anonymous locally)."""
        return Actor.from_request_context(bp.current_request.context)

    def params(*allowed: str) -> dict[str, str]:
        return query(bp.current_request.query_params, allowed)

    @bp.route("/customers/{customer_id}/people/{person_id}", methods=["GET"], authorizer=auth)
    @guarded
    def get_person(customer_id: str, person_id: str) -> Response:
        p = params("fields")
        view = service().get_person(customer_id, person_id, p.get("fields"), actor=actor())
        return json_response(200, view.to_json(), {"ETag": etag(view.version)})

    @bp.route("/customers/{customer_id}/people", methods=["GET"], authorizer=auth)
    @guarded
    def list_people(customer_id: str) -> Response:
        p = params("limit", "next", "fields", "ids")
        if "ids" in p:
            # Multi-get: one BatchGetItem for the listed ids instead of N single reads.
            if "next" in p or "limit" in p:
                raise ValidationError("ids cannot be combined with next or limit", field="ids")
            batch = service().get_people(customer_id, p["ids"], p.get("fields"), actor=actor())
            body = {"items": [v.to_json() for v in batch.items], "next": None, "missing": batch.missing}
            return json_response(200, body)
        page = service().list_people(customer_id, p.get("limit"), p.get("next"), p.get("fields"), actor=actor())
        return json_response(200, {"items": [v.to_json() for v in page.items], "next": page.next_token})

    @bp.route("/customers/{customer_id}/people/search", methods=["POST"], authorizer=auth)
    @guarded
    def search_people(customer_id: str) -> Response:
        # POST: the email travels in the body, never in a URL (access logs, traces).
        params()
        payload = parse_json_body(bp.current_request.raw_body, SEARCH_BODY_MAX_BYTES)
        views = service().search_people(customer_id, payload, actor=actor())
        return json_response(200, {"items": [view.to_json() for view in views]})

    @bp.route("/customers/{customer_id}/secrets/{secret_id}", methods=["GET"], authorizer=auth)
    @guarded
    def get_secret(customer_id: str, secret_id: str) -> Response:
        p = params("version")
        secret = service().get_secret(customer_id, secret_id, p.get("version"), actor=actor())
        body = {"id": secret.id, "version": secret.version, "created_at": secret.created_at, "value": secret.value}
        return json_response(200, body, {"ETag": etag(secret.version)})

    @bp.route("/customers/{customer_id}/secrets/{secret_id}/versions", methods=["GET"], authorizer=auth)
    @guarded
    def secret_versions(customer_id: str, secret_id: str) -> Response:
        params()
        versions = service().secret_versions(customer_id, secret_id, actor=actor())
        body = {"id": secret_id, "versions": [{"version": v.version, "created_at": v.created_at} for v in versions]}
        return json_response(200, body)

    return bp
