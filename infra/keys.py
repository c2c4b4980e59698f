"""The base stack's KMS keys and aliases, rendered from their specs (``infra.specs.KEYS``);
each key's policy names the roles of this stack (``infra.iam.keys``)."""

from __future__ import annotations

from typing import Any

from chalicelib.stages import STAGES
from infra.cfn import APP, Resource, Template, app_tags, getatt, ref, sub
from infra.iam import key_policy
from infra.roles import role_id
from infra.specs import KEYS, KeySpec


def key_resource(spec: KeySpec) -> Resource:
    """Retained; 30 days' pending window; rotation where KMS offers it (not for HMAC keys)."""
    roles = {stage.name: getatt(role_id(stage.name)) for stage in STAGES}
    properties: dict[str, Any] = {
        "Description": sub(f"{APP} ${{Environment}}: {spec.purpose}"),
        "KeySpec": spec.spec,
        "KeyUsage": spec.usage,
    }
    if spec.rotates:
        properties["EnableKeyRotation"] = True
    properties.update(
        {
            "PendingWindowInDays": 30,
            "KeyPolicy": key_policy(spec.key, ref("KeyAdminArn"), roles),
            "Tags": app_tags(),
        }
    )
    return Resource("AWS::KMS::Key", properties, deletion="Retain", skips=spec.skips)


def add_keys(template: Template) -> None:
    """Every key with its alias (``alias/pii-vault-<env><suffix>``), its ARN exported."""
    for spec in KEYS.values():
        template.add(spec.logical_id, key_resource(spec))
        template.add(
            f"{spec.logical_id}Alias",
            Resource(
                "AWS::KMS::Alias",
                {
                    "AliasName": sub(f"alias/{APP}-${{Environment}}{spec.alias_suffix}"),
                    "TargetKeyId": ref(spec.logical_id),
                },
            ),
        )
        template.output(spec.output, getatt(spec.logical_id))
