"""Write routes. This blueprint is registered only in the ``writer`` stage."""

from __future__ import annotations

from typing import Callable

from chalice import Blueprint, IAMAuthorizer, Response

from chalicelib.api.http import empty_response, etag, guarded, if_match, json_response, parse_json_body, query
from chalicelib.audit import Actor
from chalicelib.models import MAX_SECRET_BYTES
from chalicelib.service import WriterService

PERSON_BODY_MAX_BYTES = 16 * 1024
# A 64 KiB value may need up to 6 bytes of JSON per byte (\u00XX escapes) plus framing.
SECRET_BODY_MAX_BYTES = 6 * MAX_SECRET_BYTES + 1024


def writer_blueprint(service: Callable[[], WriterService]) -> Blueprint:
    bp = Blueprint(__name__)
    auth = IAMAuthorizer()

    def actor() -> Actor:
        """The SigV4 caller API Gateway authenticated (anonymous locally)."""
        return Actor.from_request_context(bp.current_request.context)

    def body(max_bytes: int) -> object:
        query(bp.current_request.query_params, ())
        return parse_json_body(bp.current_request.raw_body, max_bytes)

    def expected_version() -> int | None:
        return if_match(bp.current_request.headers)

    def person_written(status: int, customer_id: str, result, stamp_key: str) -> Response:
        headers = {"ETag": etag(result.version)}
        if status == 201:
            headers["Location"] = f"/customers/{customer_id}/people/{result.id}"
        return json_response(status, {"id": result.id, "version": result.version, stamp_key: result.timestamp}, headers)

    @bp.route("/customers/{customer_id}/people", methods=["POST"], authorizer=auth)
    @guarded
    def create_person(customer_id: str) -> Response:
        result = service().create_person(customer_id, body(PERSON_BODY_MAX_BYTES), actor=actor())
        return person_written(201, customer_id, result, "created_at")

    @bp.route("/customers/{customer_id}/people/{person_id}", methods=["PUT"], authorizer=auth)
    @guarded
    def replace_person(customer_id: str, person_id: str) -> Response:
        payload = body(PERSON_BODY_MAX_BYTES)
        result = service().replace_person(customer_id, person_id, payload, expected_version(), actor=actor())
        return person_written(200, customer_id, result, "updated_at")

    @bp.route("/customers/{customer_id}/people/{person_id}", methods=["PATCH"], authorizer=auth)
    @guarded
    def patch_person(customer_id: str, person_id: str) -> Response:
        payload = body(PERSON_BODY_MAX_BYTES)
        result = service().patch_person(customer_id, person_id, payload, expected_version(), actor=actor())
        return person_written(200, customer_id, result, "updated_at")

    @bp.route("/customers/{customer_id}/people/{person_id}", methods=["DELETE"], authorizer=auth)
    @guarded
    def delete_person(customer_id: str, person_id: str) -> Response:
        query(bp.current_request.query_params, ())
        service().delete_person(customer_id, person_id, expected_version(), actor=actor())
        return empty_response()

    @bp.route("/customers/{customer_id}/secrets/{secret_id}", methods=["PUT"], authorizer=auth)
    @guarded
    def put_secret(customer_id: str, secret_id: str) -> Response:
        result = service().put_secret(customer_id, secret_id, body(SECRET_BODY_MAX_BYTES), actor=actor())
        return json_response(
            201,
            {"id": result.id, "version": result.version, "created_at": result.timestamp},
            {"ETag": etag(result.version)},
        )

    @bp.route("/customers/{customer_id}/secrets/{secret_id}", methods=["DELETE"], authorizer=auth)
    @guarded
    def delete_secret(customer_id: str, secret_id: str) -> Response:
        query(bp.current_request.query_params, ())
        service().delete_secret(customer_id, secret_id, actor=actor())
        return empty_response()

    return bp
