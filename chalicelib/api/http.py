"""HTTP edge helpers shared by both blueprints: body parsing, headers, error mapping.

Domain errors become ``{"code", "message"}`` JSON with the right status; anything
unexpected becomes a generic 500 whose log line holds the traceback's frames but
not the exception text (which could quote data). Every answer of both stages, errors
included, leaves with ``Cache-Control: no-store``: bodies carry PII and secrets.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from chalice import Response
from chalice.app import Request

from chalicelib.api import contract
from chalicelib.api.gateway_responses import INTERNAL_ERROR
from chalicelib.service import PERSON, SECRET
from chalicelib.support import errors
from chalicelib.support.audit import REFUSED, Actor, AuditLog, text

logger = logging.getLogger(__name__)

# Refusals audited like reads, so a probing caller shows up in the audit log.
AUDITED_REFUSALS = frozenset({errors.ForbiddenError.code, errors.NotFoundError.code, errors.IntegrityError.code})
_RECORD_ID_PARAMS = (("person_id", PERSON), ("secret_id", SECRET))
_COLLECTIONS = (("/people", PERSON), ("/secrets", SECRET))
NO_STORE = contract.NO_STORE
_CHALICE_MESSAGES = {
    405: "method not allowed on this route; see the Allow header",
    415: "unsupported media type; send application/json",
}


def json_response(status: int, body: Any, headers: Mapping[str, str | list[str]] | None = None) -> Response:
    return Response(
        body=json.dumps(body, separators=(",", ":"), ensure_ascii=False),
        status_code=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def empty_response(status: int = 204) -> Response:
    return Response(body="", status_code=status, headers={})


def error_response(exc: errors.PiiVaultError) -> Response:
    status = contract.status_of(exc)
    retry = status in contract.RETRY_AFTER_STATUSES
    headers = {"Retry-After": str(contract.RETRY_AFTER_SECONDS)} if retry else {}
    return json_response(status, contract.error_body(exc.code, exc.message), headers)


def guarded(view: Callable[..., Response]) -> Callable[..., Response]:
    """Map pii-vault errors to JSON; never let a traceback or a value reach a client."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            return view(*args, **kwargs)
        except errors.PiiVaultError as exc:
            if isinstance(exc, errors.DependencyError):
                # The cause category tells contention from a bug; never a value (chalicelib/support/aws_errors.py).
                logger.error("request failed: %s (cause: %s)", exc.code, exc.cause)
            elif isinstance(exc, errors.IntegrityError):
                logger.error("request failed: %s", exc.code)
            return error_response(exc)
        except Exception as exc:  # noqa: BLE001 - the edge must answer JSON, not crash
            frames = "".join(traceback.format_tb(exc.__traceback__))
            logger.error("unhandled %s\n%s", type(exc).__name__, frames)
            return json_response(500, INTERNAL_ERROR)

    return wrapper


def _reject_constant(name: str) -> Any:
    raise ValueError("non-finite number")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError("duplicate key")
        out[key] = value
    return out


def body_bytes(request: Request) -> bytes:
    """The request body; Chalice types ``raw_body`` as ``str | bytes`` but decodes it to bytes."""
    raw = request.raw_body
    return raw.encode("utf-8") if isinstance(raw, str) else raw


def parse_json_body(raw: bytes | None, max_bytes: int) -> Any:
    """Strict JSON: UTF-8, no duplicate keys, no NaN/Infinity, bounded size and depth."""
    if raw is not None and len(raw) > max_bytes:
        raise errors.PayloadTooLargeError(f"body must be at most {max_bytes} bytes", field="body")
    if not raw:
        raise errors.MalformedJsonError("body must be a JSON object", field="body")
    try:
        return json.loads(
            raw.decode("utf-8"),
            object_pairs_hook=_no_duplicates,
            parse_constant=_reject_constant,
        )
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise errors.MalformedJsonError("body is not valid UTF-8 JSON", field="body") from None


def if_match(headers: Mapping[str, str]) -> int | None:
    """``If-Match: "3"`` -> 3; absent or ``*`` -> None (the record must merely exist)."""
    raw = headers.get(contract.IF_MATCH.lower())
    if raw is None or raw.strip() == "*":
        return None
    tag = raw.strip()
    if not contract.ETAG.fullmatch(tag):
        raise errors.ValidationError(
            f'{contract.IF_MATCH} must be one strong ETag such as "3"', field=contract.IF_MATCH
        )
    return int(tag[1:-1])


def etag(version: int) -> str:
    return f'"{version}"'


def finish_response(event: Any, get_response: Callable[[Any], Response]) -> Response:
    """Middleware for every answer: no caching anywhere, and Chalice's own 405/415/500
    (``{"Code","Message"}``) rewritten as ours."""
    response = get_response(event)
    body = response.body
    if isinstance(body, dict) and set(body) == {"Code", "Message"}:
        name = re.sub(r"Error$", "", str(body["Code"]))
        code = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
        # Chalice's 405 and 415 messages quote the client's method and Content-Type; ours echo no input.
        message = _CHALICE_MESSAGES.get(response.status_code) or str(body["Message"])
        response = json_response(response.status_code, contract.error_body(code, message), response.headers)
    response.headers = {**(response.headers or {}), **NO_STORE}
    return response


def audit_refusal(audit: AuditLog, request: Request, code: str) -> None:
    """One ``request.refused`` event: caller, route template, tenant and record id from the path."""
    params = request.uri_params if isinstance(request.uri_params, dict) else {}
    context = request.context if isinstance(request.context, dict) else {}
    route = str(context.get("resourcePath") or "")
    record_type, record_ids = next(
        ((kind, [params[name]]) for name, kind in _RECORD_ID_PARAMS if name in params),
        (next((kind for segment, kind in _COLLECTIONS if segment in route), ""), []),
    )
    audit.emit(
        REFUSED,
        Actor.from_request_context(context),
        customer_id=params.get("customer_id", ""),
        record_type=record_type,
        record_ids=record_ids,
        outcome=code,
        route=text(f"{request.method} {route}"),
    )


def audit_refusals(audit: AuditLog) -> Callable[[Request, Callable[[Request], Response]], Response]:
    """HTTP middleware: audit the views' 404 and integrity answers (the caller gate audits its own refusals)."""

    def middleware(request: Request, get_response: Callable[[Request], Response]) -> Response:
        response = get_response(request)
        code = _error_code(response)
        if code in AUDITED_REFUSALS:
            audit_refusal(audit, request, code)
        return response

    return middleware


def _error_code(response: Response) -> str | None:
    """The ``code`` of one of our JSON error answers, else None."""
    if response.status_code < 400 or not isinstance(response.body, str):
        return None
    try:
        body = json.loads(response.body)
    except ValueError:
        return None
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None
