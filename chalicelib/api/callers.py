"""Which callers a stage serves: the in-function half of the per-stage allow-list.

API Gateway's IAM authorizer authenticates the SigV4 signer and puts its ARN in the
request context (``requestContext.identity.userArn``). Any principal that some identity
policy grants ``execute-api:Invoke`` gets that far; this check, run as HTTP middleware
before the route's view (so before any KMS or DynamoDB call), refuses every principal that
is not on the stage's list and audits the refusal (outcome ``forbidden``). The refusal is
answered as an unknown route is, 404 ``not_found`` with one fixed message
(``gateway_responses.py``): nobody learns from it which routes exist.

* The list (``PII_VAULT_ALLOWED_CALLERS``) holds IAM role ARNs. Callers sign with a
  session of a role, whose ARN is ``arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION``: it
  matches the listed ``arn:aws:iam::ACCOUNT:role/NAME`` in the same partition and
  account, for any session name.
* Role paths: an assumed-role ARN drops the role's path, so a listed
  ``arn:aws:iam::ACCOUNT:role/team/NAME`` matches sessions of ``NAME`` in that account.
  This is exact, not a loosening: a role's name is unique within its account whatever
  its path. Names are compared with their case, as ``userArn`` spells them.
* Anything else is refused: no identity, an identity without ``userArn`` (``caller``
  alone is a unique id, not an ARN), IAM users, federated users, the root user, a role
  of another account or partition, and everyone when the list is empty.
* Locally (``chalice local``, ``chalice.test.Client``) there is no authorizer. When
  ``PII_VAULT_LOCAL_CALLER`` is set, a request that carries no identity is given that
  assumed-role ARN as its ``userArn``, and then meets the same check (so the local
  caller's role must be on the list too). Nothing a client sends can set it: chalice
  local builds the request context itself, and ``Settings.from_env`` refuses to start
  a Lambda function that has the variable set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from chalice.app import Request, Response

from chalicelib.api.gateway_responses import ROUTE_NOT_FOUND
from chalicelib.api.http import audit_refusal, error_response
from chalicelib.support.audit import AuditLog
from chalicelib.support.config import ASSUMED_ROLE_ARN, ROLE_ARN
from chalicelib.support.errors import ForbiddenError

Middleware = Callable[[Request, Callable[[Request], Response]], Response]


class AllowList:
    """The roles whose sessions may call one stage."""

    def __init__(self, role_arns: Iterable[str]) -> None:
        roles: set[tuple[str, str, str]] = set()
        for arn in role_arns:
            match = ROLE_ARN.fullmatch(arn)
            if match is None:
                raise ValueError("not an IAM role ARN")
            roles.add((match["partition"], match["account"], match["name"]))
        self._roles = frozenset(roles)

    def permits(self, principal_arn: str | None) -> bool:
        """True for a session of a listed role; False for anything else, including None."""
        match = ASSUMED_ROLE_ARN.fullmatch(principal_arn or "")
        return match is not None and (match["partition"], match["account"], match["name"]) in self._roles


def principal_arn(context: Mapping[str, Any] | None) -> str | None:
    """``requestContext.identity.userArn`` when it is a non-empty string."""
    identity = context.get("identity") if isinstance(context, Mapping) else None
    arn = identity.get("userArn") if isinstance(identity, Mapping) else None
    return arn if isinstance(arn, str) and arn else None


def caller_gate(allowed: AllowList, audit: AuditLog, local_caller: str | None = None) -> Middleware:
    """HTTP middleware: serve listed callers, refuse everyone else (audited; answered 404 like an unknown route)."""

    def gate(request: Request, get_response: Callable[[Request], Response]) -> Response:
        context = request.context if isinstance(request.context, dict) else {}
        if local_caller is not None and not _has_identity(context):
            # The local stand-in for the IAM authorizer (see the module docstring).
            identity = context.setdefault("identity", {})
            if isinstance(identity, dict):
                identity["userArn"] = local_caller
        arn = principal_arn(context)
        if not allowed.permits(arn):
            # Audited as forbidden; answered as an unknown route, so the refused caller learns
            # nothing about which routes exist (gateway_responses.py).
            audit_refusal(audit, request, ForbiddenError.code)
            return error_response(ROUTE_NOT_FOUND)
        return get_response(request)

    return gate


def _has_identity(context: Mapping[str, Any]) -> bool:
    """Whether an authorizer named anyone (``userArn`` or ``caller``): the local caller never replaces one."""
    identity = context.get("identity")
    return isinstance(identity, Mapping) and bool(identity.get("userArn") or identity.get("caller"))
