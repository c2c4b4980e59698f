"""A small IAM policy evaluator for the parts moto does not enforce.

Covers exactly the policy language the generated documents use (Allow/Deny, Action and
Resource with ``*``/``?`` wildcards, Principal ``{"AWS": ...}``, and the condition
operators StringEquals, StringEqualsIfExists, ForAllValues:StringEquals, Null). Anything
else raises ``Unsupported``, so a new construct in a policy fails the tests instead of
being silently treated as matching or not matching.

The request context is a dict of condition keys to a string or a list of strings;
``kms_context()`` builds the keys KMS derives from an encryption context.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any, Iterable, Mapping

ALLOW, IMPLICIT_DENY, EXPLICIT_DENY = "Allow", "ImplicitDeny", "ExplicitDeny"
_STATEMENT_KEYS = {"Sid", "Effect", "Action", "Resource", "Principal", "Condition"}


class Unsupported(ValueError):
    """The policy uses a construct this evaluator does not model."""


def kms_context(encryption_context: Mapping[str, str]) -> dict[str, Any]:
    """Condition keys of a KMS request with this encryption context."""
    keys: dict[str, Any] = {f"kms:EncryptionContext:{k}": v for k, v in encryption_context.items()}
    keys["kms:EncryptionContextKeys"] = list(encryption_context)
    return keys


def evaluate(
    policy: Mapping[str, Any],
    action: str,
    resource: str,
    context: Mapping[str, Any] | None = None,
    principal: str | None = None,
) -> str:
    """IAM's order: an explicit Deny wins, else any Allow, else implicit deny."""
    context = dict(context or {})
    statements = policy["Statement"]
    statements = [statements] if isinstance(statements, dict) else statements
    decision = IMPLICIT_DENY
    for statement in statements:
        if not _applies(statement, action, resource, context, principal):
            continue
        if statement["Effect"] == "Deny":
            return EXPLICIT_DENY
        if statement["Effect"] != "Allow":
            raise Unsupported(f"Effect {statement['Effect']!r}")
        decision = ALLOW
    return decision


def _applies(statement: Mapping[str, Any], action: str, resource: str, context: dict, principal: str | None) -> bool:
    unknown = set(statement) - _STATEMENT_KEYS
    if unknown:
        raise Unsupported(f"statement elements {sorted(unknown)}")
    if "Principal" in statement:
        if principal is None:
            raise Unsupported("a resource policy needs a principal to evaluate")
        if not _principal_matches(statement["Principal"], principal):
            return False
    elif principal is not None:
        raise Unsupported("an identity policy has no Principal; evaluate it without one")
    return (
        _any_match(statement["Action"], action, case_insensitive=True)
        and _any_match(statement["Resource"], resource)
        and all(_condition(op, block, context) for op, block in statement.get("Condition", {}).items())
    )


def _principal_matches(element: Any, principal: str) -> bool:
    if element == "*":
        return True
    if not isinstance(element, dict) or set(element) != {"AWS"}:
        raise Unsupported(f"Principal {element!r}")
    values = _as_list(element["AWS"])
    return "*" in values or principal in values


def _any_match(patterns: Any, value: str, case_insensitive: bool = False) -> bool:
    for pattern in _as_list(patterns):
        regex = fnmatch.translate(pattern)
        if re.match(regex, value, re.IGNORECASE if case_insensitive else 0):
            return True
    return False


def _condition(operator: str, block: Mapping[str, Any], context: dict) -> bool:
    for key, expected in block.items():
        expected = _as_list(expected)
        present = key in context
        actual = _as_list(context.get(key, []))
        if operator == "StringEquals":
            ok = present and len(actual) == 1 and actual[0] in expected
        elif operator == "StringEqualsIfExists":
            ok = not present or (len(actual) == 1 and actual[0] in expected)
        elif operator == "ForAllValues:StringEquals":
            ok = all(value in expected for value in actual)
        elif operator == "Null":
            if expected not in (["true"], ["false"]):
                raise Unsupported(f"Null value {expected!r}")
            ok = (not present) == (expected == ["true"])
        else:
            raise Unsupported(f"condition operator {operator}")
        if not ok:
            return False
    return True


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def allowed(policy: Mapping[str, Any], actions: Iterable[str], resource: str, **kwargs: Any) -> set[str]:
    """The subset of ``actions`` the policy allows on ``resource``."""
    return {a for a in actions if evaluate(policy, a, resource, **kwargs) == ALLOW}
