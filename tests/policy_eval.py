"""A small IAM policy evaluator for the parts moto does not enforce.

Covers exactly the policy language the generated documents use, and refuses the rest:
anything else raises ``Unsupported``, so a new construct in a policy fails the tests
instead of being silently treated as matching or not matching.

- Effect Allow/Deny; Action with ``*``/``?`` (case-insensitive); Resource matched as an
  ARN, segment by segment (case-sensitive; ``*`` stays inside a colon-separated segment
  unless it ends one or sits in the resource part), plus API Gateway's ``execute-api:/...``
  shorthand of resource policies; no Resource element at all in a role trust policy.
- Principal ``"*"`` or ``{"AWS": ...}`` with role/user ARNs; a role ARN also names every
  session of that role (IAM's rule for resource-based policies).
- Policy variables in Resource and in condition values: ``${key}``, ``${key, 'default'}``
  and the literal characters ``${*}``, ``${?}``, ``${$}``. A variable whose key is not in
  the request context makes that Resource entry (or condition value) match nothing.
  Worst-case reading, on purpose: a substituted value's ``*`` and ``?`` act as wildcards.
  The IAM documentation does not say they are escaped; STS refuses them in tag values
  anyway, and the generated trust policy refuses them again, which the tests prove.
- Condition operators: String(Not)Equals, String(Not)Like, Arn(Not)Equals, Arn(Not)Like,
  each with ...IfExists; ForAllValues:/ForAnyValue: with the positive string operators;
  Null. Condition key names are case-insensitive, values case-sensitive. A key that is
  absent: positive operators false, negated operators true, IfExists true.
- ``evaluate`` decides one policy; ``authorize`` combines identity policies with a
  resource policy: an explicit Deny anywhere wins; in one account an Allow from either
  side suffices, across accounts both must allow (API Gateway's outcome tables for IAM
  authorization). SCPs, permission boundaries and session policies are not modelled.

The request context is a dict of condition keys to a string or a list of strings;
``kms_context()`` builds the keys KMS derives from an encryption context, ``role_session``
and ``iam_user`` the caller's side of a request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

ALLOW, IMPLICIT_DENY, EXPLICIT_DENY = "Allow", "ImplicitDeny", "ExplicitDeny"
_STATEMENT_KEYS = {"Sid", "Effect", "Action", "Resource", "Principal", "Condition"}
_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_DEFAULT = re.compile(r"^(?P<key>[^,]+),\s*'(?P<default>[^']*)'$")
_LITERALS = {"*": "*", "?": "?", "$": "$"}
_SESSION_ARN = re.compile(r"^arn:(?P<p>[\w-]+):sts::(?P<account>\d{12}):assumed-role/(?P<role>[^/]+)/(?P<session>.+)$")
_IAM_ARN = re.compile(r"^arn:(?P<p>[\w-]+):iam::(?P<account>\d{12}):(?P<type>role|user)/(?:.+/)?(?P<name>[^/]+)$")


class Unsupported(ValueError):
    """The policy uses a construct this evaluator does not model."""


class _Unresolved(Exception):
    """A policy variable names a key that is not in the request context."""


@dataclass(frozen=True)
class Caller:
    """An authenticated principal: its ARN as a Principal element sees it, and the
    condition keys IAM puts into the request context for it."""

    arn: str
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def account(self) -> str:
        return self.arn.split(":")[4]


# Every DynamoDB action that writes an item (what "no write on a table" means in the proofs).
DYNAMODB_WRITES = frozenset(
    {
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:TransactWriteItems",
        "dynamodb:PartiQLInsert",
        "dynamodb:PartiQLUpdate",
        "dynamodb:PartiQLDelete",
    }
)


def role_session(role_arn: str, session_name: str = "session", tags: Mapping[str, str] | None = None) -> Caller:
    """A session of an assumed role: ``aws:PrincipalArn`` is the role ARN (with its path),
    the principal is the ``assumed-role`` session ARN, session tags are principal tags."""
    match = _IAM_ARN.match(role_arn)
    if match is None or match["type"] != "role":
        raise ValueError(f"not a role ARN: {role_arn}")
    arn = f"arn:{match['p']}:sts::{match['account']}:assumed-role/{match['name']}/{session_name}"
    context: dict[str, Any] = {
        "aws:PrincipalArn": role_arn,
        "aws:PrincipalAccount": match["account"],
        "aws:PrincipalType": "AssumedRole",
    }
    context.update({f"aws:PrincipalTag/{k}": v for k, v in (tags or {}).items()})
    return Caller(arn, context)


def iam_user(user_arn: str, tags: Mapping[str, str] | None = None) -> Caller:
    match = _IAM_ARN.match(user_arn)
    if match is None or match["type"] != "user":
        raise ValueError(f"not a user ARN: {user_arn}")
    context: dict[str, Any] = {
        "aws:PrincipalArn": user_arn,
        "aws:PrincipalAccount": match["account"],
        "aws:PrincipalType": "User",
        "aws:username": match["name"],
    }
    context.update({f"aws:PrincipalTag/{k}": v for k, v in (tags or {}).items()})
    return Caller(user_arn, context)


def kms_context(encryption_context: Mapping[str, str]) -> dict[str, Any]:
    """Condition keys of a KMS request with this encryption context."""
    keys: dict[str, Any] = {f"kms:EncryptionContext:{k}": v for k, v in encryption_context.items()}
    keys["kms:EncryptionContextKeys"] = list(encryption_context)
    return keys


def evaluate(
    policy: Mapping[str, Any],
    action: str,
    resource: str | None,
    context: Mapping[str, Any] | None = None,
    principal: str | None = None,
) -> str:
    """IAM's order within one policy: an explicit Deny wins, else any Allow, else implicit deny.

    ``resource`` is None only for a role trust policy (whose statements have no Resource).
    """
    ctx = _Context(context or {})
    statements = policy["Statement"]
    statements = [statements] if isinstance(statements, dict) else statements
    decision = IMPLICIT_DENY
    for statement in statements:
        if statement.get("Effect") not in ("Allow", "Deny"):
            raise Unsupported(f"Effect {statement.get('Effect')!r}")
        if not _applies(statement, action, resource, ctx, principal):
            continue
        if statement["Effect"] == "Deny":
            return EXPLICIT_DENY
        decision = ALLOW
    return decision


def authorize(
    action: str,
    resource: str,
    caller: Caller,
    *,
    identity_policies: Iterable[Mapping[str, Any]] = (),
    resource_policy: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
) -> str:
    """One request judged against the caller's identity policies and the resource's policy."""
    full_context = {**caller.context, **(context or {})}
    decisions = [evaluate(p, action, resource, full_context) for p in identity_policies]
    on_resource = (
        IMPLICIT_DENY
        if resource_policy is None
        else evaluate(resource_policy, action, resource, full_context, principal=caller.arn)
    )
    if EXPLICIT_DENY in decisions or on_resource == EXPLICIT_DENY:
        return EXPLICIT_DENY
    identity_allows = ALLOW in decisions
    resource_account = resource.split(":")[4] if resource.startswith("arn:") else ""
    if not resource_account:
        raise Unsupported(f"cannot tell the account of resource {resource!r}")
    if caller.account == resource_account:
        return ALLOW if identity_allows or on_resource == ALLOW else IMPLICIT_DENY
    return ALLOW if identity_allows and on_resource == ALLOW else IMPLICIT_DENY


def allowed(policy: Mapping[str, Any], actions: Iterable[str], resource: str, **kwargs: Any) -> set[str]:
    """The subset of ``actions`` the policy allows on ``resource``."""
    return {a for a in actions if evaluate(policy, a, resource, **kwargs) == ALLOW}


class _Context:
    """Condition keys are case-insensitive; their values are not."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = {key.lower(): value for key, value in values.items()}

    def __contains__(self, key: str) -> bool:
        return key.lower() in self._values

    def values(self, key: str) -> list[str]:
        return _as_list(self._values.get(key.lower(), []))

    def single(self, key: str) -> str:
        """The value a policy variable stands for; raises _Unresolved when absent."""
        if key.lower() not in self._values:
            raise _Unresolved(key)
        value = self._values[key.lower()]
        if isinstance(value, (list, tuple)):
            raise Unsupported(f"multivalued key {key} used as a policy variable")
        return str(value)


def _applies(
    statement: Mapping[str, Any], action: str, resource: str | None, ctx: _Context, principal: str | None
) -> bool:
    unknown = set(statement) - _STATEMENT_KEYS
    if unknown:
        raise Unsupported(f"statement elements {sorted(unknown)}")
    if "Principal" in statement:
        if principal is None:
            raise Unsupported("a resource policy needs a principal to evaluate")
        if not _principal_matches(statement["Principal"], principal, ctx):
            return False
    elif principal is not None:
        raise Unsupported("an identity policy has no Principal; evaluate it without one")
    if ("Resource" in statement) != (resource is not None):
        raise Unsupported("Resource is required, except in a role trust policy (evaluate with resource=None)")
    return (
        _any_action(statement["Action"], action)
        and (resource is None or any(_resource_matches(p, resource, ctx) for p in _as_list(statement["Resource"])))
        and all(_condition(op, block, ctx) for op, block in statement.get("Condition", {}).items())
    )


def _principal_matches(element: Any, principal: str, ctx: _Context) -> bool:
    if element == "*":
        return True
    if not isinstance(element, dict) or set(element) != {"AWS"}:
        raise Unsupported(f"Principal {element!r}")
    names = _as_list(element["AWS"])
    for name in names:
        if name != "*" and not _IAM_ARN.match(name):
            raise Unsupported(f"Principal {name!r}: only '*' and role or user ARNs are modelled")
    if "*" in names or principal in names:
        return True
    # A role ARN in a resource-based policy names the sessions of that role.
    return bool(_SESSION_ARN.match(principal)) and any(v in names for v in ctx.values("aws:PrincipalArn"))


def _any_action(patterns: Any, action: str) -> bool:
    return any(re.fullmatch(_regex([(p, True)], arn=False), action, re.IGNORECASE) for p in _as_list(patterns))


def _resource_matches(pattern: str, resource: str, ctx: _Context) -> bool:
    if pattern == "*":
        return True
    try:
        tokens = _substitute(pattern, ctx)
    except _Unresolved:
        return False
    if pattern.startswith("execute-api:/"):
        # API Gateway expands this shorthand to the ARNs of the API the policy is attached to.
        parts = resource.split(":", 5)
        if len(parts) != 6 or parts[2] != "execute-api" or "/" not in parts[5]:
            return False
        first, wild = tokens[0]
        tokens = [("/", False), (first[len("execute-api:/") :], wild), *tokens[1:]]
        return re.fullmatch(_regex(tokens, arn=False), "/" + parts[5].split("/", 1)[1]) is not None
    if not pattern.startswith("arn:") or pattern.count(":") < 5:
        raise Unsupported(f"Resource {pattern!r} is neither '*' nor an ARN")
    return re.fullmatch(_regex(tokens, arn=True), resource) is not None


def _substitute(text: str, ctx: _Context) -> list[tuple[str, bool]]:
    """Split ``text`` into (chunk, wildcards_active) after substituting policy variables."""
    tokens: list[tuple[str, bool]] = []
    position = 0
    for match in _VARIABLE.finditer(text):
        tokens.append((text[position : match.start()], True))
        inner = match.group(1)
        if inner in _LITERALS:
            tokens.append((_LITERALS[inner], False))
        else:
            default = _DEFAULT.match(inner)
            key = default["key"].strip() if default else inner
            try:
                tokens.append((ctx.single(key), True))  # worst case: its wildcards stay active
            except _Unresolved:
                if default is None:
                    raise
                tokens.append((default["default"], True))
        position = match.end()
    tokens.append((text[position:], True))
    return tokens


def _regex(tokens: list[tuple[str, bool]], *, arn: bool) -> str:
    chars = [(ch, wild) for chunk, wild in tokens for ch in chunk]
    out: list[str] = []
    colons = 0
    for i, (ch, wild) in enumerate(chars):
        next_is_colon = i + 1 < len(chars) and chars[i + 1][0] == ":"
        if wild and ch == "*":
            # Within the first five ARN segments a wildcard stays in its segment,
            # unless it ends the segment (then IAM lets it run across colons).
            out.append(".*" if not arn or colons >= 5 or next_is_colon else "[^:]*")
        elif wild and ch == "?":
            out.append("." if not arn or colons >= 5 else "[^:]")
        else:
            out.append(re.escape(ch))
            colons += ch == ":"
    return "".join(out)


_OPERATORS = {
    "StringEquals": ("string", False, False),
    "StringNotEquals": ("string", False, True),
    "StringLike": ("string", True, False),
    "StringNotLike": ("string", True, True),
    "ArnEquals": ("arn", False, False),
    "ArnNotEquals": ("arn", False, True),
    "ArnLike": ("arn", True, False),
    "ArnNotLike": ("arn", True, True),
}


def _condition(operator: str, block: Mapping[str, Any], ctx: _Context) -> bool:
    if operator == "Null":
        for key, expected in block.items():
            if _as_list(expected) not in (["true"], ["false"]):
                raise Unsupported(f"Null value {expected!r}")
            if (key not in ctx) != (_as_list(expected) == ["true"]):
                return False
        return True
    qualifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    if base not in _OPERATORS or qualifier not in ("", "ForAllValues", "ForAnyValue"):
        raise Unsupported(f"condition operator {operator}")
    kind, like, negated = _OPERATORS[base]
    if qualifier and (negated or if_exists or kind != "string"):
        raise Unsupported(f"condition operator {operator}")
    for key, expected in block.items():
        if not _condition_key(qualifier, kind, like, negated, if_exists, key, _as_list(expected), ctx):
            return False
    return True


def _condition_key(
    qualifier: str, kind: str, like: bool, negated: bool, if_exists: bool, key: str, expected: list[Any], ctx: _Context
) -> bool:
    patterns = []
    for value in expected:
        if not isinstance(value, str):
            raise Unsupported(f"non-string condition value {value!r}")
        try:
            patterns.append(_substitute(value, ctx))
        except _Unresolved:
            if negated:
                raise Unsupported(f"unresolvable policy variable in a negated condition on {key}") from None
            # A value naming an absent key matches nothing.

    def matches(actual: str) -> bool:
        for tokens in patterns:
            if not like:
                tokens = [(chunk, False) for chunk, _ in tokens]
            if re.fullmatch(_regex(tokens, arn=kind == "arn"), actual):
                return True
        return False

    actual = ctx.values(key)
    if qualifier == "ForAllValues":
        return all(matches(a) for a in actual)
    if qualifier == "ForAnyValue":
        return any(matches(a) for a in actual)
    if key not in ctx:
        return if_exists or negated
    if len(actual) != 1:
        raise Unsupported(f"single-valued operator on multivalued key {key}")
    return matches(actual[0]) != negated


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def resource_tags(tags: Mapping[str, str]) -> dict[str, Any]:
    """Condition keys of a request on a resource carrying ``tags`` (``aws:ResourceTag/<key>``)."""
    return {f"aws:ResourceTag/{k}": v for k, v in tags.items()}


def authorize_kms(
    action: str,
    key_arn: str,
    caller: Caller,
    *,
    key_policy: Mapping[str, Any],
    identity_policies: Iterable[Mapping[str, Any]] = (),
    context: Mapping[str, Any] | None = None,
) -> str:
    """KMS's rule, for key policies without an account-root statement (all pii-vault keys):
    an explicit Deny anywhere wins; the key policy must allow the caller itself; across
    accounts the caller's identity policy must allow too (within one account a key-policy
    grant to the role suffices, so the identity policy is the second, tag-scoped layer)."""
    full_context = {**caller.context, **(context or {})}
    decisions = [evaluate(p, action, key_arn, full_context) for p in identity_policies]
    on_key = evaluate(key_policy, action, key_arn, full_context, principal=caller.arn)
    if EXPLICIT_DENY in decisions or on_key == EXPLICIT_DENY:
        return EXPLICIT_DENY
    if on_key != ALLOW:
        return IMPLICIT_DENY
    if caller.account == key_arn.split(":")[4]:
        return ALLOW
    return ALLOW if ALLOW in decisions else IMPLICIT_DENY


@dataclass(frozen=True)
class StatementMatch:
    """How one statement relates to a request: whether its Action and Resource match, which of
    its conditions fail (operator and key), and which (action pattern, resource entry) pairs of
    it the request used when it applies."""

    index: int
    sid: str
    effect: str
    action: bool
    resource: bool
    failed: tuple[str, ...]
    grants: tuple[tuple[str, int], ...]  # (action pattern, index of the Resource entry)

    @property
    def applies(self) -> bool:
        return self.action and self.resource and not self.failed


def explain(
    policy: Mapping[str, Any],
    action: str,
    resource: str | None,
    context: Mapping[str, Any] | None = None,
    principal: str | None = None,
) -> list[StatementMatch]:
    """Per statement (principal-matching ones only, for a resource policy): what matched and
    what did not. ``evaluate`` decides; this says why (and which grants a request used)."""
    ctx = _Context(context or {})
    statements = policy["Statement"]
    statements = [statements] if isinstance(statements, dict) else statements
    found = []
    for index, statement in enumerate(statements):
        if "Principal" in statement and (
            principal is None or not _principal_matches(statement["Principal"], principal, ctx)
        ):
            continue
        patterns = [p for p in _as_list(statement["Action"]) if _any_action([p], action)]
        entries = [
            i
            for i, p in enumerate(_as_list(statement.get("Resource", [])))
            if resource is not None and _resource_matches(p, resource, ctx)
        ]
        failed = tuple(
            f"{op} {key}"
            for op, block in statement.get("Condition", {}).items()
            for key in block
            if not _condition(op, {key: block[key]}, ctx)
        )
        found.append(
            StatementMatch(
                index,
                str(statement.get("Sid", f"#{index}")),
                statement["Effect"],
                bool(patterns),
                bool(entries) or resource is None,
                failed,
                tuple((p, i) for p in patterns for i in entries) if not failed else (),
            )
        )
    return found
