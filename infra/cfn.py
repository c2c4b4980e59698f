"""The CloudFormation model: intrinsics, resources, and a template that refuses duplicate ids.

Resource families (``infra.keys``, ``infra.tables``, ``infra.roles``, ...) build ``Resource``
values and add them to a ``Template``; only ``Template.render`` produces the JSON document.
checkov skips are attached one way: a resource type's skips (``TYPE_SKIPS``), overridden or
extended by the resource's own ``skips`` (check id -> reason), both written as checkov's
inline ``Metadata.checkov.skip`` so the scanner says why in place.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

APP = "pii-vault"
ENVIRONMENT_PATTERN = "^[a-z][a-z0-9-]{0,15}$"
# What ``${Environment}`` stands for in a ``Fn::Sub`` string: every environment-scoped name.
ENV_PREFIX = f"{APP}-${{Environment}}"

Json = Any  # a JSON value: str, number, bool, None, list or dict (intrinsics are dicts)


class TemplateError(RuntimeError):
    """A generated document would not deploy as it is (duplicate id, unknown stage, ...)."""


# -- intrinsics ---------------------------------------------------------------------------


def sub(text: str) -> dict[str, Any]:
    return {"Fn::Sub": text}


def ref(name: str) -> dict[str, Any]:
    return {"Ref": name}


def getatt(resource: str, attribute: str = "Arn") -> dict[str, Any]:
    return {"Fn::GetAtt": [resource, attribute]}


def join(separator: str, values: Json) -> dict[str, Any]:
    return {"Fn::Join": [separator, values]}


def export_name(name: str) -> dict[str, Any]:
    """The base stack's export ``pii-vault-<Environment>-<name>``."""
    return sub(f"{ENV_PREFIX}-{name}")


def import_value(name: str) -> dict[str, Any]:
    return {"Fn::ImportValue": export_name(name)}


def environment_name(suffix: str = "") -> dict[str, Any]:
    """``pii-vault-<Environment><suffix>`` (table names, key aliases, the dashboard)."""
    return sub(f"{ENV_PREFIX}{suffix}")


def app_tags() -> list[dict[str, Any]]:
    """The tags of every taggable resource: the app and the environment."""
    return [{"Key": "app", "Value": APP}, {"Key": "environment", "Value": ref("Environment")}]


# -- checkov skips --------------------------------------------------------------------------

# Findings that do not apply to every resource of a type, each with its reason.
TYPE_SKIPS: Mapping[str, Mapping[str, str]] = {
    "AWS::Serverless::Function": {
        "CKV_AWS_116": "No dead-letter queue: API Gateway invokes synchronously, the caller gets the error.",
        "CKV_AWS_117": "No VPC: the function reaches only KMS and DynamoDB, by SigV4 over TLS; "
        "a VPC would add NAT or endpoints without narrowing any permission.",
        "CKV_AWS_173": "Environment variables hold names, ARNs and bounds, no secret; "
        "a CMK for them would add a Decrypt grant to every role for nothing.",
    },
    "AWS::Serverless::Api": {
        "CKV_AWS_120": "API caching stays off on every stage: a cache would hold plaintext PII "
        "outside the KMS boundary and serve it without the function's checks.",
    },
    "AWS::DynamoDB::Table": {
        "CKV_AWS_119": "Every PII attribute is sealed under our KMS key before it is written; table SSE "
        "under that key would need a key-policy statement for DynamoDB with Principal "
        "'*' (kms:ViaService), which the key policy deliberately lacks. AWS owned key at rest.",
    },
    "AWS::Logs::LogGroup": {
        "CKV_AWS_158": "Log lines carry ids, field names and statuses, never values (tests enforce it); "
        "CloudWatch Logs encrypts at rest with its own keys.",
    },
}


# -- resources and templates ------------------------------------------------------------------


@dataclass
class Resource:
    """One CloudFormation resource, apart from its rendering.

    ``deletion``: ``"Retain"`` or ``"Delete"`` for both DeletionPolicy and UpdateReplacePolicy
    (None: CloudFormation's default). ``skips``: checkov check id -> reason, over the type's own.
    """

    type: str
    properties: dict[str, Any]
    condition: str | None = None
    deletion: str | None = None
    skips: Mapping[str, str] = field(default_factory=dict)

    def render(self) -> dict[str, Any]:
        document: dict[str, Any] = {"Type": self.type}
        if self.condition is not None:
            document["Condition"] = self.condition
        if self.deletion is not None:
            document["DeletionPolicy"] = self.deletion
            document["UpdateReplacePolicy"] = self.deletion
        document["Properties"] = self.properties
        skips = {**TYPE_SKIPS.get(self.type, {}), **self.skips}
        if skips:
            document["Metadata"] = {
                "checkov": {"skip": [{"id": check, "comment": reason} for check, reason in sorted(skips.items())]}
            }
        return document


@dataclass
class Template:
    """A template under construction: every logical id (resource, parameter, condition,
    output) is added once; adding one twice raises instead of silently replacing it."""

    description: str
    format_version: bool = True
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    conditions: dict[str, Json] = field(default_factory=dict)
    resources: dict[str, Resource] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, logical_id: str, resource: Resource) -> str:
        _add_once(self.resources, logical_id, resource, "resource")
        return logical_id

    def parameter(self, name: str, declaration: dict[str, Any]) -> None:
        _add_once(self.parameters, name, declaration, "parameter")

    def condition(self, name: str, expression: Json) -> None:
        _add_once(self.conditions, name, expression, "condition")

    def output(self, name: str, value: Json, *, export: bool = True) -> None:
        """An output, exported as ``pii-vault-<Environment>-<name>`` unless ``export`` is false."""
        declaration: dict[str, Any] = {"Value": value}
        if export:
            declaration["Export"] = {"Name": export_name(name)}
        _add_once(self.outputs, name, declaration, "output")

    def render(self) -> dict[str, Any]:
        document: dict[str, Any] = {}
        if self.format_version:
            document["AWSTemplateFormatVersion"] = "2010-09-09"
        document["Description"] = self.description
        if self.parameters:
            document["Parameters"] = self.parameters
        if self.conditions:
            document["Conditions"] = self.conditions
        document["Resources"] = {name: resource.render() for name, resource in self.resources.items()}
        if self.outputs:
            document["Outputs"] = self.outputs
        return document


def _add_once(entries: dict[str, Any], name: str, value: Any, kind: str) -> None:
    if name in entries:
        raise TemplateError(f"{kind} {name} is already in the template")
    entries[name] = value


def render(document: Mapping[str, Any]) -> str:
    """The one serialisation of every generated document (templates, policies)."""
    return json.dumps(document, indent=2, sort_keys=True) + "\n"
