"""What IAM authorizes for one request: its accesses (action + resource + condition keys).

One API call may need several authorizations: a BatchGetItem is authorized per table, each
item of a TransactWriteItems as its own PutItem/UpdateItem/DeleteItem/ConditionCheckItem, a
ReEncrypt as kms:ReEncryptFrom on the source key and kms:ReEncryptTo on the destination.

Where the documentation leaves open how AWS fills a condition key (a parameter left at its
default, key attributes in ``dynamodb:Attributes``, which encryption context each half of a
ReEncrypt is judged under), an ``Access`` carries every reading in ``alternatives``: the
request counts as allowed only if it is allowed under each combination. The proof thus errs
towards "denied", never towards "allowed".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Context = dict[str, Any]  # condition key -> str or list[str]


class Underivable(ValueError):
    """The recorder cannot tell what IAM authorizes for this request (an operation, a parameter
    or an expression it does not model): the proof fails instead of guessing."""


@dataclass(frozen=True)
class Access:
    action: str
    resource: str
    context: Context = field(default_factory=dict)
    # Each entry: the readings of some keys, as partial contexts; {} means "key absent".
    alternatives: tuple[tuple[Context, ...], ...] = ()
    # Request parameters that no IAM condition key governs, as sent (never a value of an item).
    ungoverned: dict[str, Any] = field(default_factory=dict)
    # What the judge needs about the resource (a KMS key's ARN, aliases and tags).
    facts: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "resource": self.resource,
            "context": self.context,
            "alternatives": [list(a) for a in self.alternatives],
            "ungoverned": self.ungoverned,
            "facts": self.facts,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Access:
        return cls(
            data["action"],
            data["resource"],
            dict(data.get("context", {})),
            tuple(tuple(a) for a in data.get("alternatives", [])),
            dict(data.get("ungoverned", {})),
            dict(data.get("facts", {})),
        )


def alternative(key: str, sent: Any, default: str | None) -> tuple[Context, ...]:
    """The readings of a single-valued key for a parameter with a documented default: as sent,
    or (not sent) either absent or the default value."""
    if sent is not None:
        return ({key: str(sent)},)
    return ({},) if default is None else ({}, {key: default})
