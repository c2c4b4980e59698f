"""Write routes. This blueprint is registered only in the ``writer`` stage."""

from __future__ import annotations

import re
from typing import Callable

from chalice import Blueprint, IAMAuthorizer, Response

from chalicelib.api.http import empty_response, etag, guarded, if_match, json_response, parse_json_body, query
from chalicelib.audit import Actor
from chalicelib.idempotency import HEADER as IDEMPOTENCY_HEADER
from chalicelib.idempotency import IdempotentWrites, parse_key
from chalicelib.models import MAX_SECRET_BYTES
from chalicelib.service import WriteResult, WriterService

_STAGE_PREFIX = re.compile(r"(/[A-Za-z0-9._-]{1,128})?")
PERSON_BODY_MAX_BYTES = 16 * 1024
# A 64 KiB value may need up to 6 bytes of JSON per byte (\u00XX escapes) plus framing.
SECRET_BODY_MAX_BYTES = 6 * MAX_SECRET_BYTES + 1024


def writer_blueprint(
    service: Callable[[], WriterService], idempotency: Callable[[], IdempotentWrites]
) -> Blueprint:
    bp = Blueprint(__name__)
    auth = IAMAuthorizer()

    def stage_prefix(resource_path: str) -> str:
        """The API Gateway stage in front of our paths (``/api`` when deployed, none locally),
        so that ``Location`` resolves against the endpoint the client called."""
        path = str((bp.current_request.context or {}).get("path") or "")
        prefix = path[: -len(resource_path)] if path.endswith(resource_path) else ""
        return prefix if _STAGE_PREFIX.fullmatch(prefix) else ""

    def actor() -> Actor:
        """The SigV4 caller API Gateway authenticated (anonymous locally)."""
        return Actor.from_request_context(bp.current_request.context)

    def once(scope: str, write: Callable[[], dict], person_of: str | None = None) -> Response:
        """Run ``write`` (returning status/body/headers) at most once per Idempotency-Key.

        ``person_of`` (a tenant): the write creates a person; its idempotency record is
        then referenced so that the person's DELETE removes it too."""
        request = bp.current_request
        key = parse_key(request.headers.get(IDEMPOTENCY_HEADER.lower()))
        if key is None:
            answer = write()
        else:
            # Keys are per caller: another principal reusing a key neither replays nor blocks.
            scope = f"{actor().principal}\n{scope}"
            answer = idempotency().run(scope, key, request.raw_body or b"", write, bp.lambda_context)
            if person_of is not None and not answer.get("replayed") and answer["status"] == 201:
                record = idempotency().record_id(scope, key)
                if record is not None:
                    service().reference_idempotency(person_of, answer["body"]["id"], record,
                                                    idempotency().ttl_seconds)
        headers = dict(answer["headers"])
        if answer.get("replayed"):
            headers["Idempotent-Replayed"] = "true"
        return json_response(answer["status"], answer["body"], headers)

    def answer(status: int, result: WriteResult, stamp_key: str, headers: dict[str, str]) -> dict:
        body = {"id": result.id, "version": result.version, stamp_key: result.timestamp}
        return {"status": status, "body": body, "headers": {"ETag": etag(result.version), **headers}}

    def body(max_bytes: int) -> object:
        query(bp.current_request.query_params, ())
        return parse_json_body(bp.current_request.raw_body, max_bytes)

    def expected_version() -> int | None:
        return if_match(bp.current_request.headers)

    def updated(result: WriteResult) -> Response:
        done = answer(200, result, "updated_at", {})
        return json_response(done["status"], done["body"], done["headers"])

    @bp.route("/customers/{customer_id}/people", methods=["POST"], authorizer=auth)
    @guarded
    def create_person(customer_id: str) -> Response:
        payload = body(PERSON_BODY_MAX_BYTES)

        def write() -> dict:
            result = service().create_person(customer_id, payload, actor=actor())
            location = f"{stage_prefix(f'/customers/{customer_id}/people')}/customers/{customer_id}/people/{result.id}"
            return answer(201, result, "created_at", {"Location": location})

        return once(f"people.create:{customer_id}", write, person_of=customer_id)

    @bp.route("/customers/{customer_id}/people/{person_id}", methods=["PUT"], authorizer=auth)
    @guarded
    def replace_person(customer_id: str, person_id: str) -> Response:
        payload = body(PERSON_BODY_MAX_BYTES)
        result = service().replace_person(customer_id, person_id, payload, expected_version(), actor=actor())
        return updated(result)

    @bp.route("/customers/{customer_id}/people/{person_id}", methods=["PATCH"], authorizer=auth)
    @guarded
    def patch_person(customer_id: str, person_id: str) -> Response:
        payload = body(PERSON_BODY_MAX_BYTES)
        result = service().patch_person(customer_id, person_id, payload, expected_version(), actor=actor())
        return updated(result)

    @bp.route("/customers/{customer_id}/people/{person_id}", methods=["DELETE"], authorizer=auth)
    @guarded
    def delete_person(customer_id: str, person_id: str) -> Response:
        query(bp.current_request.query_params, ())
        service().delete_person(customer_id, person_id, expected_version(), actor=actor())
        return empty_response()

    @bp.route("/customers/{customer_id}/secrets/{secret_id}", methods=["PUT"], authorizer=auth)
    @guarded
    def put_secret(customer_id: str, secret_id: str) -> Response:
        payload = body(SECRET_BODY_MAX_BYTES)

        def write() -> dict:
            return answer(201, service().put_secret(customer_id, secret_id, payload, actor=actor()), "created_at", {})

        return once(f"secret.put:{customer_id}:{secret_id}", write)

    @bp.route("/customers/{customer_id}/secrets/{secret_id}", methods=["DELETE"], authorizer=auth)
    @guarded
    def delete_secret(customer_id: str, secret_id: str) -> Response:
        query(bp.current_request.query_params, ())
        service().delete_secret(customer_id, secret_id, actor=actor())
        return empty_response()

    return bp
