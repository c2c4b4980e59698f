"""The answers given before any view runs, stated once: locally and by API Gateway.

API Gateway answers some requests itself, without invoking the function: a path or a
method it has no route for, a request without a SigV4 signature, a bad or expired one, a
principal the resource policy refuses. Unless its *gateway responses* are set, those
answers are ``403 {"message": "Missing Authentication Token"}`` and the like: not the
project's ``{code, message}`` shape, and, worse, they tell a caller which routes exist (an
unknown route answers MISSING_AUTHENTICATION_TOKEN, a known one refuses the signature or
the principal).

So every answer that refuses *who* is asking is the answer for an unknown route,
``ROUTE_NOT_FOUND`` (404 ``not_found``, one fixed message): on AWS by the gateway
responses below (the templates import ``gateway_responses()``); in the function by the
caller gate (``callers.py``), for a principal IAM let through but the stage's allow-list
does not hold; under ``chalice local`` and ``chalice.test.Client`` by
``local_gateway.py``, which stands in for API Gateway's routing. Nothing here imports
Chalice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chalicelib.api import contract
from chalicelib.support import errors

if TYPE_CHECKING:
    from chalicelib.api import shapes

# One message for an unknown route and a refused caller: the caller cannot tell them apart.
ROUTE_NOT_FOUND = errors.NotFoundError("no such route, or not open to this caller")
# The function's own answer to an unexpected exception (``http.guarded``) and API Gateway's 5xx.
INTERNAL_ERROR = contract.error_body("internal_error", "internal error")


@dataclass(frozen=True)
class GatewayAnswer:
    """One gateway response: ``status`` None keeps API Gateway's own status for the type
    (DEFAULT_4XX and DEFAULT_5XX must: a status set on them replaces that of every type
    they cover), ``body`` the JSON error document, ``headers`` added to the answer."""

    status: int | None
    body: shapes.Error
    headers: dict[str, str] = field(default_factory=dict)

    def all_headers(self) -> dict[str, str]:
        """Every header of the answer, ``Content-Type`` and ``Cache-Control: no-store`` included."""
        return {"Content-Type": "application/json", **contract.NO_STORE, **self.headers}

    def response_parameters(self) -> dict[str, str]:
        """``ResponseParameters`` of an ``AWS::ApiGateway::GatewayResponse``: static header values."""
        headers = {**contract.NO_STORE, **self.headers}
        return {f"gatewayresponse.header.{name}": f"'{value}'" for name, value in headers.items()}

    def response_templates(self) -> dict[str, str]:
        """``ResponseTemplates``: the fixed body (no ``$`` or ``#``, so nothing for the template engine)."""
        text = json.dumps(self.body, separators=(",", ":"))
        if "$" in text or "#" in text:
            raise ValueError("a gateway response body must not contain $ or #")
        return {"application/json": text}


def not_found() -> GatewayAnswer:
    """The answer for an unknown route or method, and for any refused caller."""
    return GatewayAnswer(404, contract.error_body(ROUTE_NOT_FOUND.code, ROUTE_NOT_FOUND.message))


def gateway_responses() -> dict[str, GatewayAnswer]:
    """API Gateway response type -> the answer the REST API of every API stage gives for it.

    The four types that refuse the caller answer exactly ``not_found()``: API Gateway
    checks the route first (an unknown one is MISSING_AUTHENTICATION_TOKEN whatever the
    signature), so for a known route a missing, bad or expired signature or a denied
    principal must not read differently. Throttling keeps the app's ``throttled`` code
    and ``Retry-After``. Anything else keeps its status with a generic body.
    """
    refused = not_found()
    retry = {"Retry-After": str(contract.RETRY_AFTER_SECONDS)}
    return {
        "MISSING_AUTHENTICATION_TOKEN": refused,
        "ACCESS_DENIED": refused,
        "INVALID_SIGNATURE": refused,
        "EXPIRED_TOKEN": refused,
        "THROTTLED": GatewayAnswer(429, contract.error_body(errors.ThrottledError.code, "too many requests"), retry),
        "REQUEST_TOO_LARGE": GatewayAnswer(
            413, contract.error_body(errors.PayloadTooLargeError.code, "request too large")
        ),
        "DEFAULT_4XX": GatewayAnswer(None, contract.error_body("request_refused", "request refused")),
        "DEFAULT_5XX": GatewayAnswer(None, INTERNAL_ERROR),
    }


def openapi_extension() -> dict[str, Any]:
    """``gateway_responses()`` as the OpenAPI extension API Gateway reads from an API
    definition (``x-amazon-apigateway-gateway-responses``): merged into the definition,
    they are part of every deployment of the API, with no separate resource to redeploy."""
    responses: dict[str, Any] = {}
    for kind, answer in gateway_responses().items():
        status = {} if answer.status is None else {"statusCode": str(answer.status)}
        responses[kind] = {
            **status,
            "responseParameters": answer.response_parameters(),
            "responseTemplates": answer.response_templates(),
        }
    return {"x-amazon-apigateway-gateway-responses": responses}
