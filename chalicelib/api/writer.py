"""Write routes. This blueprint is registered only in the ``writer`` stage."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from chalice import Blueprint, IAMAuthorizer, Response

from chalicelib.api import contract, views
from chalicelib.api.contract import PEOPLE, PERSON, SECRET
from chalicelib.api.http import body_bytes, empty_response, etag, guarded, if_match, json_response, parse_json_body
from chalicelib.domain.validation import ID_PATTERNS
from chalicelib.service import WriteResult, WriterService
from chalicelib.service.common import PERSON as PERSON_KIND
from chalicelib.service.common import SECRET as SECRET_KIND
from chalicelib.support.audit import Actor
from chalicelib.support.idempotency import IdempotentWrites, StoredAnswer, parse_key

_PERSON_ID = re.compile(ID_PATTERNS["person_id"])


def is_person_id(record_id: str) -> bool:
    return _PERSON_ID.fullmatch(record_id) is not None


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
        *,
        kind: str,
        tenant: str,
        valid_id: Callable[[str], bool],
    ) -> Response:
        """201 for ``write()``, run at most once per Idempotency-Key: a retry gets the first answer,
        rebuilt from its checked (id, version, created_at); no stored header is ever sent.

        The write's idempotency record is referenced under (tenant, ``kind``, id), so that the
        record's DELETE, and the tenant's offboarding, remove it too."""
        request = bp.current_request
        key = parse_key(request.headers.get(contract.IDEMPOTENCY_KEY.lower()))
        if key is None:
            result = write()
            return written(201, result, headers(result))

        def recorded() -> StoredAnswer:
            result = write()
            return StoredAnswer(result.id, result.version, result.timestamp)

        # Keys are per caller: another principal reusing a key neither replays nor blocks.
        scope = f"{actor().principal}\n{scope}"
        answer, replayed = idempotency().run(
            scope, key, body_bytes(request), recorded, bp.lambda_context, valid_id=valid_id
        )
        result = WriteResult(answer.id, answer.version, answer.created_at)
        if not replayed:
            record = idempotency().record_id(scope, key)
            if record is not None:
                service().reference_idempotency(tenant, kind, result.id, record, idempotency().ttl_seconds)
        return written(201, result, {**headers(result), **({"Idempotent-Replayed": "true"} if replayed else {})})

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

        return created_once(
            f"people.create:{customer_id}", write, location, kind=PERSON_KIND, tenant=customer_id, valid_id=is_person_id
        )

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

        return created_once(
            f"secret.put:{customer_id}:{secret_id}",
            write,
            lambda _: {},
            kind=SECRET_KIND,
            tenant=customer_id,
            valid_id=lambda record_id: record_id == secret_id,  # a PUT answers with the path's id
        )

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
