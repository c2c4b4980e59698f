"""Write routes. This blueprint is registered only in the ``writer`` stage."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from chalice import Blueprint, IAMAuthorizer, Response

from chalicelib.api import contract, views
from chalicelib.api.contract import PEOPLE, PERSON, SECRET
from chalicelib.api.http import body_bytes, empty_response, etag, guarded, if_match, json_response, parse_json_body
from chalicelib.service import WriteResult, WriterService
from chalicelib.support.audit import Actor
from chalicelib.support.errors import IntegrityError
from chalicelib.support.idempotency import IdempotentWrites, parse_key


def writer_blueprint(service: Callable[[], WriterService], idempotency: Callable[[], IdempotentWrites]) -> Blueprint:
    bp = Blueprint(__name__)
    auth = IAMAuthorizer()

    def stage_prefix(resource_path: str) -> str:
        """The API Gateway stage in front of our paths (``/api`` when deployed, none locally),
        so that ``Location`` resolves against the endpoint the client called."""
        path = str((bp.current_request.context or {}).get("path") or "")
        prefix = path[: -len(resource_path)] if path.endswith(resource_path) else ""
        return prefix if contract.STAGE_PREFIX.fullmatch(prefix) else ""

    def actor() -> Actor:
        """The SigV4 caller API Gateway authenticated (anonymous locally)."""
        return Actor.from_request_context(bp.current_request.context)

    def answer(
        status: int, result: WriteResult, headers: Mapping[str, str]
    ) -> tuple[Mapping[str, object], dict[str, str]]:
        """Body and headers of a write's answer (``created_at`` for 201, ``updated_at`` for 200)."""
        body = views.created(result) if status == 201 else views.updated(result)
        return body, {"ETag": etag(result.version), **headers}

    def written(status: int, result: WriteResult, headers: Mapping[str, str] | None = None) -> Response:
        return json_response(status, *answer(status, result, headers or {}))

    def created_once(
        scope: str,
        write: Callable[[], WriteResult],
        headers: Callable[[WriteResult], dict[str, str]],
        person_of: str | None = None,
    ) -> Response:
        """201 for ``write()``, run at most once per Idempotency-Key: a retry gets the first answer back.

        ``person_of`` (a tenant): the write creates a person; its idempotency record is
        then referenced, so that the person's DELETE removes it too."""
        request = bp.current_request
        key = parse_key(request.headers.get(contract.IDEMPOTENCY_KEY.lower()))
        if key is None:
            result = write()
            return written(201, result, headers(result))

        def recorded() -> dict[str, Any]:
            # What the idempotency table keeps of the answer.
            result = write()
            body, answer_headers = answer(201, result, headers(result))
            return {"status": 201, "body": body, "headers": answer_headers}

        # Keys are per caller: another principal reusing a key neither replays nor blocks.
        scope = f"{actor().principal}\n{scope}"
        stored = idempotency().run(scope, key, body_bytes(request), recorded, bp.lambda_context)
        status, stored_body, stored_headers = stored.get("status"), stored.get("body"), stored.get("headers")
        if (
            status != 201
            or not isinstance(stored_body, dict)
            or not isinstance(stored_headers, dict)
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in stored_headers.items())
        ):
            raise IntegrityError("a stored idempotent answer is malformed")  # edited in its table
        if person_of is not None and not stored.get("replayed"):
            record = idempotency().record_id(scope, key)
            if record is not None:
                service().reference_idempotency(person_of, stored_body["id"], record, idempotency().ttl_seconds)
        replayed = {"Idempotent-Replayed": "true"} if stored.get("replayed") else {}
        return json_response(status, stored_body, {**stored_headers, **replayed})

    def body(path: str, method: str) -> object:
        op = contract.operation(path, method)
        contract.known_query(op, bp.current_request.query_params)
        return parse_json_body(body_bytes(bp.current_request), op.max_body_bytes)

    def no_body(path: str, method: str) -> None:
        contract.known_query(contract.operation(path, method), bp.current_request.query_params)

    def expected_version() -> int | None:
        return if_match(bp.current_request.headers)

    @bp.route(PEOPLE, methods=["POST"], authorizer=auth)
    @guarded
    def create_person(customer_id: str) -> Response:
        payload = body(PEOPLE, "POST")

        def location(result: WriteResult) -> dict[str, str]:
            path = f"/customers/{customer_id}/people"
            return {"Location": f"{stage_prefix(path)}{path}/{result.id}"}

        def write() -> WriteResult:
            return service().create_person(customer_id, payload, actor=actor())

        return created_once(f"people.create:{customer_id}", write, location, person_of=customer_id)

    @bp.route(PERSON, methods=["PUT"], authorizer=auth)
    @guarded
    def replace_person(customer_id: str, person_id: str) -> Response:
        payload = body(PERSON, "PUT")
        result = service().replace_person(customer_id, person_id, payload, expected_version(), actor=actor())
        return written(200, result)

    @bp.route(PERSON, methods=["PATCH"], authorizer=auth)
    @guarded
    def patch_person(customer_id: str, person_id: str) -> Response:
        payload = body(PERSON, "PATCH")
        result = service().patch_person(customer_id, person_id, payload, expected_version(), actor=actor())
        return written(200, result)

    @bp.route(PERSON, methods=["DELETE"], authorizer=auth)
    @guarded
    def delete_person(customer_id: str, person_id: str) -> Response:
        no_body(PERSON, "DELETE")
        service().delete_person(customer_id, person_id, expected_version(), actor=actor())
        return empty_response()

    @bp.route(SECRET, methods=["PUT"], authorizer=auth)
    @guarded
    def put_secret(customer_id: str, secret_id: str) -> Response:
        payload = body(SECRET, "PUT")

        def write() -> WriteResult:
            return service().put_secret(customer_id, secret_id, payload, actor=actor())

        return created_once(f"secret.put:{customer_id}:{secret_id}", write, lambda _: {})

    @bp.route(SECRET, methods=["DELETE"], authorizer=auth)
    @guarded
    def delete_secret(customer_id: str, secret_id: str) -> Response:
        no_body(SECRET, "DELETE")
        progress = service().delete_secret(customer_id, secret_id, actor=actor())
        if progress.done:
            return empty_response()
        body = views.delete_in_progress(secret_id, progress.remaining)
        return json_response(202, body, {"Retry-After": str(contract.RETRY_AFTER_SECONDS)})

    return bp
