"""CloudFormation for one pii-vault environment: a base stack and one stack per stage.

Layout (one pass per environment, no second step):

- ``out/base.json``: the KMS key, the PII and idempotency tables, the reader fleet's HMAC
  key and key table (chalicelib/keys/fleet.py), both functions' IAM
  roles with the policies from ``tools.policies`` (the same generator as always), the
  log groups (function and API access logs, retention from a parameter), the metric
  filters, alarms and the dashboard. The key policy names the two roles by ``!GetAtt``
  in the same template; the roles' own policies are separate ``AWS::IAM::Policy``
  resources so that key -> role and policy -> key form no cycle. Everything a stage
  needs is exported as ``pii-vault-<Environment>-<name>``.
- ``out/<stage>/sam.json`` (+ ``deployment.zip``): ``chalice package`` of the stage with
  ``out/merge-<stage>.json`` merged in. The merge template imports the role, the key
  ARN and the table names, names the function and the API after the environment,
  installs the stage's caller allow-list (resource policy + ``PII_VAULT_ALLOWED_CALLERS``),
  and adds what Chalice has no setting for (JSON log format, access logs, throttling).

Account and region come from pseudo-parameters; per-environment values are template
parameters, kept per environment in ``deploy/params/<env>.json``. Nothing generated
here contains an account id.

    python -m tools.stacks templates [--out out]     # base.json + merge-<stage>.json
    python -m tools.stacks package [--out out]       # templates + chalice package + bytecode
    python -m tools.stacks params --env dev --stack writer   # Key=Value for --parameter-overrides
    python -m tools.stacks policies DIR              # example policy documents (for parliament)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from chalicelib.api import functions as job_functions
from chalicelib.store import fleet_table, layout
from chalicelib.support import config
from tools import access, findforget, policies

APP = policies.APP_NAME
STAGES = ("writer", "reader", "masked")
API_STAGE_NAME = "api"  # .chalice/config.json api_gateway_stage
ROOT = Path(__file__).resolve().parent.parent
PARAMS_DIR = ROOT / "deploy" / "params"
ENVIRONMENT_PATTERN = "^[a-z][a-z0-9-]{0,15}$"
PRINCIPAL_PATTERN = r"^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/[A-Za-z0-9+=,.@_/-]{1,512}$"
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
DEFAULT_LOG_RETENTION_DAYS = 365  # audit lines live in these groups: a year, then gone
# Per stage: reserved concurrency bounds what one stage can take from the account's pool
# (and how hard it can hit KMS); throttling bounds a caller before the function runs.
DEFAULTS = {"ReservedConcurrency": 20, "ThrottlingRateLimit": 50, "ThrottlingBurstLimit": 100}

# Tables: the one description of their keys (tools.bootstrap builds the local ones from it).
TABLE_KEY_SCHEMA = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
TABLE_ATTRIBUTES = [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}]
IDEMPOTENCY_KEY_SCHEMA = [{"AttributeName": "id", "KeyType": "HASH"}]
IDEMPOTENCY_ATTRIBUTES = [{"AttributeName": "id", "AttributeType": "S"}]
IDEMPOTENCY_TTL_ATTRIBUTE = "expiration"
# The reader fleet's key table: chalicelib.store.fleet_table describes it (and its TTL attribute).
FLEET_TABLE = fleet_table.table_definition(f"{APP}{config.FLEET_TABLE_SUFFIX}")

# The log lines the metric filters count. chalicelib.api.http logs "request failed: <code>"
# at ERROR for every integrity and dependency error (a dependency error's line goes on with
# its cause category: "request failed: storage_error (cause: throttled)"); with the Lambda
# JSON log format the line is {"level": "ERROR", "message": "request failed: integrity_error", ...}.
ERROR_CODES = {"IntegrityErrors": "integrity_error", "KmsErrors": "kms_error", "StorageErrors": "storage_error"}
# chalicelib.keys.fleet logs "fleet key table entry ...: integrity_error; asking KMS" at ERROR for an
# entry that is malformed, impossible or fails authentication: someone else wrote the table.
# The read itself succeeds (KMS answers), so no "request failed" line counts it.
FLEET_INTEGRITY_MESSAGE = "fleet key table *integrity_error*"
# API Gateway access log line: ids, status and timings; never a body, a query string or a header.
ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "extendedRequestId": "$context.extendedRequestId",
    "requestTime": "$context.requestTimeEpoch",
    "httpMethod": "$context.httpMethod",
    "resourcePath": "$context.resourcePath",
    "path": "$context.path",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationStatus": "$context.integration.status",
    "integrationLatency": "$context.integration.latency",
    "errorType": "$context.error.responseType",
    "principal": "$context.identity.userArn",
    "accountId": "$context.identity.accountId",
    "sourceIp": "$context.identity.sourceIp",
    "xrayTraceId": "$context.xrayTraceId",
}

# checkov findings that do not apply, each with its reason; attached as resource metadata
# (checkov's inline skip) to every resource of the type, or (keyed by logical id) to one
# resource, so the scanner says why in place.
CHECKOV_SKIPS: dict[str, dict[str, str]] = {
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
    "FleetMacKey": {
        "CKV_AWS_7": "An HMAC_256 key: KMS offers no automatic rotation for HMAC keys. The sealing keys it "
        "derives change every epoch (chalicelib/keys/fleet.py); rotate by a new key, entries expire.",
    },
    "FleetKeyTable": {
        "CKV_AWS_119": "Entries are data keys sealed with AES-256-GCM under keys only the reader role can derive "
        "(kms:GenerateMac); table SSE under a CMK would need a key-policy statement for DynamoDB "
        "with Principal '*'. AWS owned key at rest.",
        "CKV_AWS_28": "No point-in-time recovery on purpose: the table holds only expiring, rebuildable cache "
        "entries, and a backup would let an entry outlive its lifetime (and a disabled KMS key).",
    },
}

_SENTINEL_PARTITION, _SENTINEL_REGION, _SENTINEL_ACCOUNT = "aws", "zz-sentinel-9", "999999999999"
_SENTINEL_KEY = f"arn:aws:kms:{_SENTINEL_REGION}:{_SENTINEL_ACCOUNT}:key/00000000-0000-4000-8000-000000000000"
_SENTINEL_TABLE = f"arn:aws:dynamodb:{_SENTINEL_REGION}:{_SENTINEL_ACCOUNT}:table/{APP}"
_SENTINEL_FLEET_KEY = f"arn:aws:kms:{_SENTINEL_REGION}:{_SENTINEL_ACCOUNT}:key/00000000-0000-4000-8000-000000000001"
_SENTINEL_BEACON_KEY = f"arn:aws:kms:{_SENTINEL_REGION}:{_SENTINEL_ACCOUNT}:key/00000000-0000-4000-8000-000000000002"
_SENTINEL_ROLE = f"arn:aws:iam::{_SENTINEL_ACCOUNT}:role/sentinel-" + "{}"
_SENTINEL_CALLER = _SENTINEL_ROLE.format("caller")


class TemplateError(RuntimeError):
    """A generated document would not deploy as it is (e.g. a sentinel survived)."""


# -- small CloudFormation helpers -------------------------------------------------------


def sub(text: str) -> dict[str, Any]:
    return {"Fn::Sub": text}


def ref(name: str) -> dict[str, Any]:
    return {"Ref": name}


def getatt(resource: str, attribute: str = "Arn") -> dict[str, Any]:
    return {"Fn::GetAtt": [resource, attribute]}


def export_name(name: str) -> dict[str, Any]:
    return sub(f"{APP}-${{Environment}}-{name}")


def import_value(name: str) -> dict[str, Any]:
    return {"Fn::ImportValue": export_name(name)}


def function_name(stage: str) -> str:
    """The deployed function's name, as a ``Fn::Sub`` string (``pii-vault-<env>-<stage>``)."""
    return f"{APP}-${{Environment}}-{stage}"


def _environment_parameter() -> dict[str, Any]:
    return {
        "Type": "String",
        "AllowedPattern": ENVIRONMENT_PATTERN,
        "Description": "Environment name (dev, prod, ...): part of every resource name and export.",
    }


def _with_checkov_skips(resource: dict[str, Any], name: str = "") -> dict[str, Any]:
    skips = {**CHECKOV_SKIPS.get(resource.get("Type", ""), {}), **CHECKOV_SKIPS.get(name, {})}
    if skips:
        resource.setdefault("Metadata", {})["checkov"] = {
            "skip": [{"id": check, "comment": reason} for check, reason in sorted(skips.items())]
        }
    return resource


def substitute(document: Any, exact: Mapping[str, Any], stage_functions: Mapping[str, str] | None = None) -> Any:
    """Turn a policy generated for sentinel ARNs into one with intrinsics.

    ``exact`` maps whole sentinel strings to intrinsics (``!GetAtt Key.Arn``); any other
    string holding the sentinel partition/region/account becomes a ``Fn::Sub`` with the
    pseudo-parameters. Raises if a sentinel would survive.
    """
    stage_functions = stage_functions or {}

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if not isinstance(value, str):
            return value
        if value in exact:
            return exact[value]
        if _SENTINEL_ACCOUNT in value or _SENTINEL_REGION in value:
            text = value.replace(f"arn:{_SENTINEL_PARTITION}:", "arn:${AWS::Partition}:")
            text = text.replace(f":{_SENTINEL_REGION}:", ":${AWS::Region}:")
            text = text.replace(f":{_SENTINEL_ACCOUNT}:", ":${AWS::AccountId}:")
            for old, new in stage_functions.items():
                text = re.sub(rf"/aws/lambda/{re.escape(old)}(?=$|:)", f"/aws/lambda/{new}", text)
            if _SENTINEL_ACCOUNT in text or _SENTINEL_REGION in text or "sentinel" in text:
                raise TemplateError(f"unresolved sentinel in {value!r}")
            return sub(text)
        return value

    return walk(document)


# -- the base stack ----------------------------------------------------------------------


def role_policies() -> dict[str, dict[str, Any]]:
    """Each stage's identity policy, from tools.policies, with intrinsics for the ARNs."""
    exact = {
        _SENTINEL_KEY: getatt("Key"),
        _SENTINEL_TABLE: getatt("PiiTable"),
        _SENTINEL_TABLE + config.IDEMPOTENCY_SUFFIX: getatt("IdempotencyTable"),
        _SENTINEL_FLEET_KEY: getatt("FleetMacKey"),
        _SENTINEL_TABLE + config.FLEET_TABLE_SUFFIX: getatt("FleetKeyTable"),
        _SENTINEL_TABLE + config.LEDGER_SUFFIX: getatt("ErasureLedgerTable"),
        **find_and_forget_arns(),
        **tenant_key_arns(),
    }
    functions = {f"{APP}-{stage}": function_name(stage) for stage in STAGES}
    ledger = _SENTINEL_TABLE + config.LEDGER_SUFFIX
    return {
        "writer": substitute(
            policies.with_tenant_keys(
                policies.writer_policy(_SENTINEL_KEY, _SENTINEL_TABLE, ledger_table_arn=ledger),
                "writer",
                _SENTINEL_TABLE,
            ),
            exact,
            functions,
        ),
        "reader": substitute(
            policies.with_tenant_keys(
                policies.reader_policy(
                    _SENTINEL_KEY,
                    _SENTINEL_TABLE,
                    fleet_mac_key_arn=_SENTINEL_FLEET_KEY,
                    beacon_key_arn=_SENTINEL_BEACON_KEY,
                ),
                "reader",
                _SENTINEL_TABLE,
            ),
            exact,
            functions,
        ),
        # The masked stage: masked-view data keys and attributes only (no fleet table, no search).
        "masked": substitute(
            policies.with_tenant_keys(
                policies.masked_policy(_SENTINEL_KEY, _SENTINEL_TABLE), "masked", _SENTINEL_TABLE
            ),
            exact,
            functions,
        ),
    }


def key_policy_document() -> dict[str, Any]:
    """tools.policies.key_policy with the admin parameter and the roles of this stack (the
    indexer decrypts emails to compute beacons; offboarding has no KMS permission)."""
    admin, writer, reader, indexer, masked = (
        _SENTINEL_ROLE.format(n) for n in ("admin", "writer", "reader", "indexer", "masked")
    )
    document = policies.key_policy(admin, writer, reader, indexer_role_arn=indexer, masked_role_arn=masked)
    rewrap = _SENTINEL_ROLE.format("rewrap")
    document["Statement"] += policies.rewrap_key_statements(rewrap)
    exact = {
        admin: ref("KeyAdminArn"),
        writer: getatt("WriterRole"),
        reader: getatt("ReaderRole"),
        indexer: getatt("IndexerRole"),
        masked: getatt("MaskedRole"),
        rewrap: getatt("RewrapRole"),
    }
    substituted: dict[str, Any] = substitute(document, exact)
    return substituted


def fleet_key_policy_document() -> dict[str, Any]:
    """tools.policies.fleet_key_policy with the admin parameter and this stack's reader role."""
    admin, reader = (_SENTINEL_ROLE.format(n) for n in ("admin", "reader"))
    exact = {admin: ref("KeyAdminArn"), reader: getatt("ReaderRole")}
    substituted: dict[str, Any] = substitute(policies.fleet_key_policy(admin, reader), exact)
    return substituted


def _lambda_role() -> dict[str, Any]:
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                        "Condition": {"StringEquals": {"aws:SourceAccount": ref("AWS::AccountId")}},
                    }
                ],
            },
            "Tags": [{"Key": "app", "Value": APP}, {"Key": "environment", "Value": ref("Environment")}],
        },
    }


def _retained(resource: dict[str, Any]) -> dict[str, Any]:
    resource["DeletionPolicy"] = "Retain"
    resource["UpdateReplacePolicy"] = "Retain"
    return resource


def _log_group(name: str) -> dict[str, Any]:
    return {
        "Type": "AWS::Logs::LogGroup",
        "Properties": {"LogGroupName": sub(name), "RetentionInDays": ref("LogRetentionDays")},
    }


def _alarm(description: str, metric: dict[str, Any], threshold: Any, *, period: int = 300) -> dict[str, Any]:
    actions = {"Fn::If": ["HasAlarmTopic", [ref("AlarmTopicArn")], ref("AWS::NoValue")]}
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmDescription": sub(description),
            **metric,
            "Period": period,
            "EvaluationPeriods": 1,
            "Threshold": threshold,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": actions,
            "OKActions": actions,
        },
    }


def error_filter_pattern(code: str) -> str:
    """CloudWatch filter pattern for the JSON log line of one error code."""
    return f'{{ ($.level = "ERROR") && ($.message = "request failed: {code}*") }}'


def fleet_integrity_filter_pattern() -> str:
    """CloudWatch filter pattern for the reader's fleet-table integrity lines (chalicelib.keys.fleet)."""
    return f'{{ ($.level = "ERROR") && ($.message = "{FLEET_INTEGRITY_MESSAGE}") }}'


def _metric_filter(log_group: str, pattern: str, namespace: str, metric: str) -> dict[str, Any]:
    return {
        "Type": "AWS::Logs::MetricFilter",
        "Properties": {
            "LogGroupName": ref(log_group),
            "FilterPattern": pattern,
            "MetricTransformations": [
                {
                    "MetricNamespace": sub(namespace),
                    "MetricName": metric,
                    "MetricValue": "1",
                    "DefaultValue": 0,
                }
            ],
        },
    }


def _stage_policies(stage: str, document: dict[str, Any]) -> dict[str, Any]:
    """A stage role's two policies: its generated one and the X-Ray tracing one."""
    title, role = stage.capitalize(), [ref(f"{stage.capitalize()}Role")]
    return {
        f"{title}Policy": {
            "Type": "AWS::IAM::Policy",
            "Properties": {"PolicyName": f"{APP}-{stage}", "PolicyDocument": document, "Roles": role},
        },
        f"{title}TracingPolicy": {
            "Type": "AWS::IAM::Policy",
            "Properties": {
                "PolicyName": f"{APP}-{stage}-tracing",
                "PolicyDocument": policies.tracing_policy(),
                "Roles": role,
            },
        },
    }


def base_template() -> dict[str, Any]:
    namespace = f"{APP}/${{Environment}}"
    resources: dict[str, Any] = {
        "Key": _retained(
            {
                "Type": "AWS::KMS::Key",
                "Properties": {
                    "Description": sub(f"{APP} ${{Environment}}: wraps per-record data keys"),
                    "KeySpec": "SYMMETRIC_DEFAULT",
                    "KeyUsage": "ENCRYPT_DECRYPT",
                    "EnableKeyRotation": True,
                    "PendingWindowInDays": 30,
                    "KeyPolicy": key_policy_document(),
                    "Tags": [{"Key": "app", "Value": APP}, {"Key": "environment", "Value": ref("Environment")}],
                },
            }
        ),
        "KeyAlias": {
            "Type": "AWS::KMS::Alias",
            "Properties": {"AliasName": sub(f"alias/{APP}-${{Environment}}"), "TargetKeyId": ref("Key")},
        },
        "PiiTable": _retained(
            {
                "Type": "AWS::DynamoDB::Table",
                "Properties": {
                    "TableName": sub(f"{APP}-${{Environment}}"),
                    "BillingMode": "PAY_PER_REQUEST",
                    "KeySchema": TABLE_KEY_SCHEMA,
                    "AttributeDefinitions": TABLE_ATTRIBUTES,
                    "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                    "DeletionProtectionEnabled": True,
                    "Tags": [{"Key": "app", "Value": APP}, {"Key": "environment", "Value": ref("Environment")}],
                },
            }
        ),
        "FleetMacKey": _retained(
            {
                "Type": "AWS::KMS::Key",
                "Properties": {
                    "Description": sub(f"{APP} ${{Environment}}: derives the reader fleet's key-table sealing keys"),
                    # GenerateMac only; HMAC keys have no automatic rotation (see CHECKOV_SKIPS).
                    "KeySpec": "HMAC_256",
                    "KeyUsage": "GENERATE_VERIFY_MAC",
                    "PendingWindowInDays": 30,
                    "KeyPolicy": fleet_key_policy_document(),
                    "Tags": [{"Key": "app", "Value": APP}, {"Key": "environment", "Value": ref("Environment")}],
                },
            }
        ),
        "FleetMacKeyAlias": {
            "Type": "AWS::KMS::Alias",
            "Properties": {"AliasName": sub(f"alias/{APP}-${{Environment}}-fleet"), "TargetKeyId": ref("FleetMacKey")},
        },
        # Only expiring entries a reader can rebuild from KMS: no backups (an entry must not
        # outlive its lifetime), no deletion protection, deleted with the stack.
        "FleetKeyTable": {
            "Type": "AWS::DynamoDB::Table",
            "DeletionPolicy": "Delete",
            "UpdateReplacePolicy": "Delete",
            "Properties": {
                "TableName": sub(f"{APP}-${{Environment}}{config.FLEET_TABLE_SUFFIX}"),
                "BillingMode": FLEET_TABLE["BillingMode"],
                "KeySchema": FLEET_TABLE["KeySchema"],
                "AttributeDefinitions": FLEET_TABLE["AttributeDefinitions"],
                "TimeToLiveSpecification": {"AttributeName": fleet_table.TTL, "Enabled": True},
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": False},
                "Tags": [{"Key": "app", "Value": APP}, {"Key": "environment", "Value": ref("Environment")}],
            },
        },
        # The erasure ledger (ids and times only): kept like the PII table, since replaying
        # it after a point-in-time restore is what keeps erased people erased.
        "ErasureLedgerTable": _retained(
            {
                "Type": "AWS::DynamoDB::Table",
                "Properties": {
                    "TableName": sub(f"{APP}-${{Environment}}{config.LEDGER_SUFFIX}"),
                    "BillingMode": "PAY_PER_REQUEST",
                    "KeySchema": [
                        {"AttributeName": layout.LEDGER_PK, "KeyType": "HASH"},
                        {"AttributeName": layout.LEDGER_SK, "KeyType": "RANGE"},
                    ],
                    "AttributeDefinitions": [
                        {"AttributeName": layout.LEDGER_PK, "AttributeType": "S"},
                        {"AttributeName": layout.LEDGER_SK, "AttributeType": "S"},
                    ],
                    "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                    "DeletionProtectionEnabled": True,
                    "Tags": [{"Key": "app", "Value": APP}, {"Key": "environment", "Value": ref("Environment")}],
                },
            }
        ),
        "IdempotencyTable": _retained(
            {
                "Type": "AWS::DynamoDB::Table",
                "Properties": {
                    "TableName": sub(f"{APP}-${{Environment}}{config.IDEMPOTENCY_SUFFIX}"),
                    "BillingMode": "PAY_PER_REQUEST",
                    "KeySchema": IDEMPOTENCY_KEY_SCHEMA,
                    "AttributeDefinitions": IDEMPOTENCY_ATTRIBUTES,
                    "TimeToLiveSpecification": {"AttributeName": IDEMPOTENCY_TTL_ATTRIBUTE, "Enabled": True},
                    "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                    "DeletionProtectionEnabled": True,
                    "Tags": [{"Key": "app", "Value": APP}, {"Key": "environment", "Value": ref("Environment")}],
                },
            }
        ),
        "WriterRole": _lambda_role(),
        "ReaderRole": _lambda_role(),
        "MaskedRole": _lambda_role(),
        "ApiGatewayCloudWatchRole": {
            "Type": "AWS::IAM::Role",
            "Condition": "ManageApiGatewayAccount",
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "apigateway.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                },
                "ManagedPolicyArns": [
                    sub("arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs")
                ],
            },
        },
        "ApiGatewayAccount": {
            "Type": "AWS::ApiGateway::Account",
            "Condition": "ManageApiGatewayAccount",
            "Properties": {"CloudWatchRoleArn": getatt("ApiGatewayCloudWatchRole")},
        },
    }
    outputs: dict[str, Any] = {
        "KeyArn": {"Value": getatt("Key"), "Export": {"Name": export_name("KeyArn")}},
        "TableName": {"Value": ref("PiiTable"), "Export": {"Name": export_name("TableName")}},
        "IdempotencyTableName": {
            "Value": ref("IdempotencyTable"),
            "Export": {"Name": export_name("IdempotencyTableName")},
        },
        "FleetMacKeyArn": {"Value": getatt("FleetMacKey"), "Export": {"Name": export_name("FleetMacKeyArn")}},
        "FleetTableName": {"Value": ref("FleetKeyTable"), "Export": {"Name": export_name("FleetTableName")}},
        "LedgerTableName": {"Value": ref("ErasureLedgerTable"), "Export": {"Name": export_name("LedgerTableName")}},
    }
    documents = role_policies()
    for stage in STAGES:
        title = stage.capitalize()
        resources.update(_stage_policies(stage, documents[stage]))
        resources[f"{title}LogGroup"] = _log_group(f"/aws/lambda/{function_name(stage)}")
        resources[f"{title}AccessLogGroup"] = _log_group(f"/aws/apigateway/{function_name(stage)}-access")
        for metric, code in ERROR_CODES.items():
            resources[f"{title}{metric}Filter"] = _metric_filter(
                f"{title}LogGroup", error_filter_pattern(code), namespace, f"{title}{metric}"
            )
        resources[f"{title}ApiThrottledFilter"] = _metric_filter(
            f"{title}AccessLogGroup", '{ $.status = "429" }', namespace, f"{title}ApiThrottled"
        )

        def custom(name: str) -> dict[str, Any]:
            return {"Namespace": sub(namespace), "MetricName": name, "Statistic": "Sum"}

        lambda_dims = [{"Name": "FunctionName", "Value": sub(function_name(stage))}]
        api_dims = [{"Name": "ApiName", "Value": sub(function_name(stage))}, {"Name": "Stage", "Value": API_STAGE_NAME}]
        resources[f"{title}IntegrityErrorsAlarm"] = _alarm(
            f"{APP} ${{Environment}} {stage}: a stored record failed authentication (any is an incident)",
            custom(f"{title}IntegrityErrors"),
            1,
            period=60,
        )
        resources[f"{title}KmsErrorsAlarm"] = _alarm(
            f"{APP} ${{Environment}} {stage}: KMS calls failing (502 kms_error)",
            custom(f"{title}KmsErrors"),
            ref("KmsErrorsThreshold"),
        )
        resources[f"{title}Api5xxRateAlarm"] = _alarm(
            f"{APP} ${{Environment}} {stage}: share of 5xx answers over 5 minutes",
            {"Namespace": "AWS/ApiGateway", "MetricName": "5XXError", "Statistic": "Average", "Dimensions": api_dims},
            ref("FiveXxRateThreshold"),
        )
        resources[f"{title}LambdaThrottlesAlarm"] = _alarm(
            f"{APP} ${{Environment}} {stage}: invocations throttled at the reserved concurrency",
            {"Namespace": "AWS/Lambda", "MetricName": "Throttles", "Statistic": "Sum", "Dimensions": lambda_dims},
            1,
        )
        resources[f"{title}ApiThrottledAlarm"] = _alarm(
            f"{APP} ${{Environment}} {stage}: requests refused with 429 by API Gateway throttling",
            custom(f"{title}ApiThrottled"),
            ref("ApiThrottledThreshold"),
        )
        if stage == "reader":
            resources["ReaderFleetIntegrityErrorsFilter"] = _metric_filter(
                "ReaderLogGroup", fleet_integrity_filter_pattern(), namespace, "ReaderFleetIntegrityErrors"
            )
            resources["ReaderFleetIntegrityErrorsAlarm"] = _alarm(
                f"{APP} ${{Environment}} reader: a fleet key table entry failed its checks (someone other "
                "than the reader wrote the table; reads fell back to KMS)",
                custom("ReaderFleetIntegrityErrors"),
                1,
                period=60,
            )
        outputs[f"{title}RoleArn"] = {
            "Value": getatt(f"{title}Role"),
            "Export": {"Name": export_name(f"{title}RoleArn")},
        }
        outputs[f"{title}AccessLogGroupArn"] = {
            "Value": getatt(f"{title}AccessLogGroup"),
            "Export": {"Name": export_name(f"{title}AccessLogGroupArn")},
        }
    resources["Dashboard"] = {
        "Type": "AWS::CloudWatch::Dashboard",
        "Properties": {"DashboardName": sub(f"{APP}-${{Environment}}"), "DashboardBody": sub(dashboard_body())},
    }
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"{APP} base stack: KMS keys, tables, function roles, logs, alarms, dashboard",
        "Parameters": {
            "Environment": _environment_parameter(),
            "KeyAdminArn": {
                "Type": "String",
                "AllowedPattern": PRINCIPAL_PATTERN,
                "Description": "IAM role (or user) that administers the key, without cryptographic use. "
                "Deploy this stack as that principal: KMS refuses a key policy that locks its creator out.",
            },
            "LogRetentionDays": {
                "Type": "Number",
                "Default": DEFAULT_LOG_RETENTION_DAYS,
                "AllowedValues": list(LOG_RETENTION_DAYS),
                "Description": "Retention of function logs (audit lines) and API access logs, in days.",
            },
            "ManageApiGatewayAccount": {
                "Type": "String",
                "Default": "true",
                "AllowedValues": ["true", "false"],
                "Description": "Set API Gateway's account-wide CloudWatch role (needed once per account and region "
                "for access logs); 'false' where another stack already does.",
            },
            "AlarmTopicArn": {
                "Type": "String",
                "Default": "",
                "Description": "SNS topic for alarm and OK notifications; empty: alarms without actions.",
            },
            "KmsErrorsThreshold": {
                "Type": "Number",
                "Default": 5,
                "MinValue": 1,
                "Description": "kms_error answers per 5 minutes that raise the alarm.",
            },
            "FiveXxRateThreshold": {
                "Type": "Number",
                "Default": 0.05,
                "MinValue": 0,
                "MaxValue": 1,
                "Description": "Share of 5xx answers per 5 minutes that raises the alarm.",
            },
            "ApiThrottledThreshold": {
                "Type": "Number",
                "Default": 10,
                "MinValue": 1,
                "Description": "429 answers per 5 minutes that raise the alarm.",
            },
        },
        "Conditions": {
            "ManageApiGatewayAccount": {"Fn::Equals": [ref("ManageApiGatewayAccount"), "true"]},
            "HasAlarmTopic": {"Fn::Not": [{"Fn::Equals": [ref("AlarmTopicArn"), ""]}]},
        },
        "Resources": {name: _with_checkov_skips(r, name) for name, r in resources.items()},
        "Outputs": outputs,
    }
    add_find_and_forget(template)
    add_tenant_keys(template)
    return template


def dashboard_body() -> str:
    """The CloudWatch dashboard as a ``Fn::Sub`` string (region and environment substituted)."""
    region, namespace = "${AWS::Region}", f"{APP}/${{Environment}}"

    def widget(
        title: str, metrics: list[list[Any]], *, stat: str = "Sum", x: int = 0, y: int = 0, width: int = 12
    ) -> dict[str, Any]:
        return {
            "type": "metric",
            "x": x,
            "y": y,
            "width": width,
            "height": 6,
            "properties": {
                "title": title,
                "region": region,
                "stat": stat,
                "period": 300,
                "view": "timeSeries",
                "metrics": metrics,
            },
        }

    widgets: list[dict[str, Any]] = []
    y = 0
    for stage in STAGES:
        title, name = stage.capitalize(), function_name(stage)
        widgets.append(
            widget(
                f"{stage}: requests and errors",
                [
                    ["AWS/ApiGateway", "Count", "ApiName", name, "Stage", API_STAGE_NAME],
                    [".", "4XXError", ".", ".", ".", "."],
                    [".", "5XXError", ".", ".", ".", "."],
                ],
                y=y,
            )
        )
        widgets.append(
            widget(
                f"{stage}: latency p50 / p90 / p99 (ms)",
                [
                    ["AWS/ApiGateway", "Latency", "ApiName", name, "Stage", API_STAGE_NAME, {"stat": "p50"}],
                    ["...", {"stat": "p90"}],
                    ["...", {"stat": "p99"}],
                ],
                stat="p50",
                x=12,
                y=y,
            )
        )
        y += 6
        errors = [[namespace, f"{title}IntegrityErrors"], [".", f"{title}KmsErrors"], [".", f"{title}StorageErrors"]]
        if stage == "reader":
            errors.append([".", "ReaderFleetIntegrityErrors"])
        widgets.append(widget(f"{stage}: integrity, KMS and storage errors", errors, y=y))
        widgets.append(
            widget(
                f"{stage}: throttles and concurrency",
                [
                    ["AWS/Lambda", "Throttles", "FunctionName", name],
                    [".", "ConcurrentExecutions", ".", ".", {"stat": "Maximum"}],
                    [namespace, f"{title}ApiThrottled"],
                ],
                x=12,
                y=y,
            )
        )
        y += 6
    # KMS calls come from the account's API usage metrics (per operation, all keys of the
    # account and region). Key-cache hit rate ~ 1 - KMS calls / requests of the stage.
    kms_usage = ["AWS/Usage", "CallCount", "Type", "API", "Resource", "{}", "Service", "KMS", "Class", "None"]
    widgets.append(
        widget(
            "KMS calls (Encrypt = writer, Decrypt = reader)",
            [
                [*kms_usage[:5], "Encrypt", *kms_usage[6:], {"id": "enc"}],
                [*kms_usage[:5], "Decrypt", *kms_usage[6:], {"id": "dec"}],
            ],
            y=y,
        )
    )
    widgets.append(
        widget(
            "Key-cache hit rate (1 - KMS calls / requests)",
            [
                [{"expression": "100 * (1 - enc / MAX([wreq, 1]))", "label": "writer hit %", "id": "whit"}],
                [{"expression": "100 * (1 - dec / MAX([rreq, 1]))", "label": "reader hit %", "id": "rhit"}],
                [*kms_usage[:5], "Encrypt", *kms_usage[6:], {"id": "enc", "visible": False}],
                [*kms_usage[:5], "Decrypt", *kms_usage[6:], {"id": "dec", "visible": False}],
                [
                    "AWS/ApiGateway",
                    "Count",
                    "ApiName",
                    function_name("writer"),
                    "Stage",
                    API_STAGE_NAME,
                    {"id": "wreq", "visible": False},
                ],
                [
                    "AWS/ApiGateway",
                    "Count",
                    "ApiName",
                    function_name("reader"),
                    "Stage",
                    API_STAGE_NAME,
                    {"id": "rreq", "visible": False},
                ],
            ],
            x=12,
            y=y,
        )
    )
    return json.dumps({"widgets": widgets}, separators=(",", ":"))


# -- the stage merge templates -----------------------------------------------------------


def api_resource_policy(stage: str, *, listed: bool) -> dict[str, Any]:
    """``tools.access.api_resource_policy`` (the document the policy evaluator proves) with the
    ``AllowedCallers`` parameter as its list: the non-empty form, or the deny-everyone one."""
    document = access.api_resource_policy(stage, [_SENTINEL_CALLER] if listed else [])
    (statement,) = document["Statement"]
    if listed:
        condition = statement["Condition"]
        (operator,) = condition
        if condition[operator] != {"aws:PrincipalArn": [_SENTINEL_CALLER]}:
            raise TemplateError(f"unexpected resource policy condition {condition!r}")
        condition[operator] = {"aws:PrincipalArn": ref("AllowedCallers")}
    return document


def key_cache_settings(stage: str) -> dict[str, str]:
    """The stage's key-cache (and key-scope / fleet lifetime) variables from .chalice/config.json."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text(encoding="utf-8"))
    variables = {**config.get("environment_variables", {}), **config["stages"][stage].get("environment_variables", {})}
    prefixes = (
        "PII_VAULT_WRITER_KEY_CACHE_",
        "PII_VAULT_READER_KEY_CACHE_",
        "PII_VAULT_KEY_SCOPE",
        "PII_VAULT_FLEET_KEY_LIFETIME_SECONDS",
    )
    return {k: str(v) for k, v in sorted(variables.items()) if k.startswith(prefixes)}


def stage_merge_template(stage: str) -> dict[str, Any]:
    """Merged by ``chalice package --merge-template`` into the stage's SAM template."""
    if stage not in STAGES:
        raise TemplateError(f"unknown stage {stage!r}")
    title = stage.capitalize()
    variables: dict[str, Any] = {
        "PII_VAULT_TABLE": import_value("TableName"),
        "PII_VAULT_KMS_KEY_ID": import_value("KeyArn"),
        # The same list as the resource policy's: the function's own check (defence in depth).
        "PII_VAULT_ALLOWED_CALLERS": {"Fn::Join": [",", ref("AllowedCallers")]},
    }
    if stage == "writer":
        variables["PII_VAULT_IDEMPOTENCY_TABLE"] = import_value("IdempotencyTableName")
        variables["PII_VAULT_LEDGER_TABLE"] = import_value("LedgerTableName")
    elif stage == "reader":
        variables["PII_VAULT_FLEET_TABLE"] = import_value("FleetTableName")
        # Pinned by ARN like the data key: an alias could be re-pointed.
        variables["PII_VAULT_FLEET_MAC_KEY_ID"] = import_value("FleetMacKeyArn")
    if stage == "reader":
        variables.update(reader_search_variables())
    # Chalice merges these over .chalice/config.json's stage variables; restated so the merge
    # template alone says what the function runs with (the same values, from the same file).
    variables.update(key_cache_settings(stage))
    variables.update(tenant_key_variables(stage))
    resource_policy = {
        "Fn::If": [
            "HasAllowedCallers",
            api_resource_policy(stage, listed=True),
            api_resource_policy(stage, listed=False),
        ]
    }
    function = _with_checkov_skips(
        {
            "Type": "AWS::Serverless::Function",
            "Properties": {
                "FunctionName": sub(function_name(stage)),
                "Role": import_value(f"{title}RoleArn"),
                "Environment": {"Variables": variables},
                "ReservedConcurrentExecutions": ref("ReservedConcurrency"),
                "Tracing": "Active",
                # Chalice has no setting for it: one JSON event per log line (audit lines included).
                "LoggingConfig": {
                    "LogFormat": "JSON",
                    "LogGroup": sub(f"/aws/lambda/{function_name(stage)}"),
                    "ApplicationLogLevel": "INFO",
                    "SystemLogLevel": "WARN",
                },
            },
        }
    )
    api = _with_checkov_skips(
        {
            "Type": "AWS::Serverless::Api",
            "Properties": {
                "Name": sub(function_name(stage)),
                "TracingEnabled": True,
                "CacheClusterEnabled": False,
                "AccessLogSetting": {
                    "DestinationArn": import_value(f"{title}AccessLogGroupArn"),
                    "Format": json.dumps(ACCESS_LOG_FORMAT, separators=(",", ":")),
                },
                "MethodSettings": [
                    {
                        "ResourcePath": "/*",
                        "HttpMethod": "*",
                        "CachingEnabled": False,
                        "MetricsEnabled": True,
                        "DataTraceEnabled": False,  # would log request and response bodies
                        "LoggingLevel": "OFF",
                        "ThrottlingRateLimit": ref("ThrottlingRateLimit"),
                        "ThrottlingBurstLimit": ref("ThrottlingBurstLimit"),
                    }
                ],
                "DefinitionBody": {"x-amazon-apigateway-policy": resource_policy},
            },
        }
    )
    return {
        "Description": f"{APP} {stage} stage (chalice package + tools/stacks.py merge template)",
        "Parameters": {
            "Environment": _environment_parameter(),
            "AllowedCallers": {
                "Type": "CommaDelimitedList",
                "Default": "",
                "Description": "IAM role/user ARNs allowed to call this stage (sessions of a listed role match). "
                "Everyone else is denied by the API resource policy and by the function. "
                "Empty: nobody.",
            },
            "ReservedConcurrency": {"Type": "Number", "Default": DEFAULTS["ReservedConcurrency"], "MinValue": 1},
            "ThrottlingRateLimit": {
                "Type": "Number",
                "Default": DEFAULTS["ThrottlingRateLimit"],
                "MinValue": 1,
                "Description": "Steady requests per second for the stage.",
            },
            "ThrottlingBurstLimit": {"Type": "Number", "Default": DEFAULTS["ThrottlingBurstLimit"], "MinValue": 1},
        },
        "Conditions": {
            "HasAllowedCallers": {"Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", ref("AllowedCallers")]}, ""]}]},
        },
        "Resources": {"APIHandler": function, "RestAPI": api},
    }


# -- find and forget: beacon key, table stream and beacon index, job stages ---------------
#
# The lookup-by-email and erasure resources (docs/find-and-forget.md): the beacon HMAC key
# (kms:GenerateMac by the reader and the indexer only), the PII table's stream (feeding the
# indexer) and its beacon GSI, the jobs' checkpoint table, the indexer and offboard roles
# with the policies from tools.policies, and the two job stages' merge templates: functions
# without an API (the stream handler and the per-segment job functions).

JOB_STAGES = tuple(job_functions.FUNCTIONS)  # ("indexer", "offboard"), as chalicelib.api.functions registers them
ALL_STAGES = STAGES + JOB_STAGES
# How long the indexer may lag behind the table (IteratorAge of its stream) before the alarm.
DEFAULT_INDEXER_ITERATOR_AGE_MS = 60_000
# The indexer logs a stored person that fails authentication at WARNING ("... does not open;
# beacon left as is", chalicelib/service/indexer.py) and carries on: the line is the only signal.
INDEXER_INTEGRITY_MESSAGE = "indexer: person * does not open*"
JOB_CHECKOV_SKIPS = {
    "CKV_AWS_116": "No dead-letter queue: nothing invokes a job function asynchronously. The stream handler's "
    "failed batch is retried by its event source mapping (and raises the errors and iterator-age alarms); "
    "the per-segment functions are invoked synchronously by tools.jobs, which sees the error.",
}
FIND_AND_FORGET_SKIPS = {
    "BeaconKey": {
        "CKV_AWS_7": "An HMAC_256 key: KMS offers no automatic rotation for HMAC keys. Change it by a new key "
        "and the backfill job (docs/find-and-forget.md, 'Changing the beacon key').",
    },
    "JobsTable": {
        "CKV_AWS_28": "No point-in-time recovery on purpose: checkpoints only (job id, segment, the scan position "
        "as key ids, counters); a lost checkpoint means a job re-runs its segment, which is idempotent.",
    },
}


def job_function_name(stage: str, function: str) -> str:
    """A job function's deployed name (``Fn::Sub``): ``pii-vault-<env>-<stage>-<function>``,
    chalice deploy's ``<app>-<stage>-<function>`` with the environment."""
    return function_name(f"{stage}-{function}")


def _cfn_name(name: str) -> str:
    """The logical id chalice package gives a resource of this name (``index_beacons`` ->
    ``IndexBeacons``), so the merge template lands on chalice's own resources."""
    from chalice.utils import to_cfn_resource_name

    return str(to_cfn_resource_name(name))


def stream_event_name(function: str) -> str:
    """The logical id of the ``Events`` entry chalice package writes for ``on_dynamodb_record``."""
    return _cfn_name(f"{function}-dynamodb-event-source")


def find_and_forget_arns() -> dict[str, Any]:
    """Sentinel ARN -> intrinsic for what the job and search policies name besides the key and table."""
    return {
        _SENTINEL_BEACON_KEY: getatt("BeaconKey"),
        _SENTINEL_TABLE + config.JOBS_SUFFIX: getatt("JobsTable"),
        # Sub-resources of the PII table: by its ARN, never by the sentinel's table name.
        f"{_SENTINEL_TABLE}/stream/*": sub("${PiiTable.Arn}/stream/*"),
        f"{_SENTINEL_TABLE}/index/{policies.BEACON_INDEX}": sub(f"${{PiiTable.Arn}}/index/{policies.BEACON_INDEX}"),
    }


def _refuse_sentinel_table(document: Any) -> Any:
    """A policy naming the sentinel table's name (not ``PiiTable.Arn``) would scope nothing real."""
    text = json.dumps(document)
    if f":table/{APP}/" in text or f':table/{APP}"' in text:
        raise TemplateError("a policy names the PII table by the sentinel name instead of its ARN")
    return document


def job_role_policies() -> dict[str, dict[str, Any]]:
    """The indexer's and offboarding's identity policies (tools.policies), with intrinsics."""
    exact = {
        _SENTINEL_KEY: getatt("Key"),
        _SENTINEL_TABLE: getatt("PiiTable"),
        _SENTINEL_TABLE + config.IDEMPOTENCY_SUFFIX: getatt("IdempotencyTable"),
        _SENTINEL_TABLE + config.LEDGER_SUFFIX: getatt("ErasureLedgerTable"),
        **find_and_forget_arns(),
        **tenant_key_arns(),
    }
    functions = {
        f"{APP}-{stage}-{name}": job_function_name(stage, name)
        for stage, names in job_functions.FUNCTIONS.items()
        for name in names
    }
    documents = {
        "indexer": policies.with_tenant_keys(
            policies.indexer_policy(_SENTINEL_KEY, _SENTINEL_TABLE, _SENTINEL_BEACON_KEY), "indexer", _SENTINEL_TABLE
        ),
        "offboard": policies.offboard_policy(_SENTINEL_KEY, _SENTINEL_TABLE),
        "rewrap": policies.rewrap_policy(_SENTINEL_KEY, None, _SENTINEL_TABLE),
    }
    return {stage: _refuse_sentinel_table(substitute(doc, exact, functions)) for stage, doc in documents.items()}


def beacon_key_policy_document() -> dict[str, Any]:
    """tools.policies.beacon_key_policy: the admin parameter; GenerateMac for the reader and indexer roles."""
    admin, reader, indexer = (_SENTINEL_ROLE.format(n) for n in ("admin", "reader", "indexer"))
    exact = {admin: ref("KeyAdminArn"), reader: getatt("ReaderRole"), indexer: getatt("IndexerRole")}
    substituted: dict[str, Any] = substitute(policies.beacon_key_policy(admin, [reader, indexer]), exact)
    return substituted


def reader_search_variables() -> dict[str, Any]:
    """What a deployed search needs beyond the reader's other settings: the beacon key, by ARN."""
    return {"PII_VAULT_BEACON_KEY_ID": import_value("BeaconKeyArn")}


def _add_stream_and_beacon_index(table: dict[str, Any]) -> None:
    """The PII table's stream (keys only: the indexer reads each changed person's email
    attributes with a projected GetItem, never a whole image) and the sparse beacon GSI the reader queries
    (hash pk = the tenant, range beacon, keys only; chalicelib/store/beacons.py)."""
    props = table["Properties"]
    props["StreamSpecification"] = {"StreamViewType": findforget.STREAM_VIEW}
    props["AttributeDefinitions"] = [
        *props["AttributeDefinitions"],
        {"AttributeName": layout.BEACON, "AttributeType": "B"},
    ]
    props["GlobalSecondaryIndexes"] = [
        {
            "IndexName": layout.BEACON_INDEX,
            "KeySchema": [
                {"AttributeName": layout.PK, "KeyType": "HASH"},
                {"AttributeName": layout.BEACON, "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        }
    ]


def add_find_and_forget(template: dict[str, Any]) -> None:
    """Add the beacon key, stream, beacon index, jobs table, job roles, logs and alarms to the base template."""
    resources: dict[str, Any] = template["Resources"]
    outputs: dict[str, Any] = template["Outputs"]
    namespace = f"{APP}/${{Environment}}"
    tags = [{"Key": "app", "Value": APP}, {"Key": "environment", "Value": ref("Environment")}]
    _add_stream_and_beacon_index(resources["PiiTable"])
    new: dict[str, Any] = {
        "BeaconKey": _retained(
            {
                "Type": "AWS::KMS::Key",
                "Properties": {
                    "Description": sub(f"{APP} ${{Environment}}: email beacons (root MAC of the per-tenant keys)"),
                    # GenerateMac only; HMAC keys have no automatic rotation (see FIND_AND_FORGET_SKIPS).
                    "KeySpec": "HMAC_256",
                    "KeyUsage": "GENERATE_VERIFY_MAC",
                    "PendingWindowInDays": 30,
                    "KeyPolicy": beacon_key_policy_document(),
                    "Tags": tags,
                },
            }
        ),
        "BeaconKeyAlias": {
            "Type": "AWS::KMS::Alias",
            "Properties": {"AliasName": sub(f"alias/{APP}-${{Environment}}-beacon"), "TargetKeyId": ref("BeaconKey")},
        },
        # Checkpoints of the bulk jobs: deleted with the stack, no backups (see FIND_AND_FORGET_SKIPS).
        "JobsTable": {
            "Type": "AWS::DynamoDB::Table",
            "DeletionPolicy": "Delete",
            "UpdateReplacePolicy": "Delete",
            "Properties": {
                "TableName": sub(f"{APP}-${{Environment}}{config.JOBS_SUFFIX}"),
                "BillingMode": "PAY_PER_REQUEST",
                "KeySchema": [
                    {"AttributeName": layout.JOB_PK, "KeyType": "HASH"},
                    {"AttributeName": layout.JOB_SK, "KeyType": "RANGE"},
                ],
                "AttributeDefinitions": [
                    {"AttributeName": layout.JOB_PK, "AttributeType": "S"},
                    {"AttributeName": layout.JOB_SK, "AttributeType": "N"},
                ],
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": False},
                "Tags": tags,
            },
        },
    }
    documents = job_role_policies()

    def custom(name: str) -> dict[str, Any]:
        return {"Namespace": sub(namespace), "MetricName": name, "Statistic": "Sum"}

    for stage in JOB_STAGES:
        title = stage.capitalize()
        new[f"{title}Role"] = _lambda_role()
        new.update(_stage_policies(stage, documents[stage]))
        outputs[f"{title}RoleArn"] = {
            "Value": getatt(f"{title}Role"),
            "Export": {"Name": export_name(f"{title}RoleArn")},
        }
        for name in job_functions.FUNCTIONS[stage]:
            prefix = f"{title}{_cfn_name(name)}"  # IndexerIndexBeacons, IndexerBackfill, OffboardOffboard
            deployed = job_function_name(stage, name)
            dims = [{"Name": "FunctionName", "Value": sub(deployed)}]
            new[f"{prefix}LogGroup"] = _log_group(f"/aws/lambda/{deployed}")
            new[f"{prefix}ErrorsAlarm"] = _alarm(
                f"{APP} ${{Environment}} {stage}-{name}: invocations failed (a stream batch is retried and holds "
                "its shard; a job segment reports the error to its caller)",
                {"Namespace": "AWS/Lambda", "MetricName": "Errors", "Statistic": "Sum", "Dimensions": dims},
                1,
            )
            new[f"{prefix}ThrottlesAlarm"] = _alarm(
                f"{APP} ${{Environment}} {stage}-{name}: invocations throttled at the reserved concurrency",
                {"Namespace": "AWS/Lambda", "MetricName": "Throttles", "Statistic": "Sum", "Dimensions": dims},
                1,
            )
            if stage == "indexer":
                new[f"{prefix}IntegrityFilter"] = _metric_filter(
                    f"{prefix}LogGroup", indexer_integrity_filter_pattern(), namespace, "IndexerIntegrityErrors"
                )
            if name == job_functions.STREAM_FUNCTION:
                # How far the indexer is behind the table: search misses writes younger than this.
                new["IndexerIteratorAgeAlarm"] = _alarm(
                    f"{APP} ${{Environment}} indexer: the table's stream is read late (search lags behind writes)",
                    {
                        "Namespace": "AWS/Lambda",
                        "MetricName": "IteratorAge",
                        "Statistic": "Maximum",
                        "Dimensions": dims,
                        "Unit": "Milliseconds",
                    },
                    ref("IndexerIteratorAgeThresholdMs"),
                )
    new["IndexerIntegrityErrorsAlarm"] = _alarm(
        f"{APP} ${{Environment}} indexer: a stored person failed authentication while indexing (any is an incident)",
        custom("IndexerIntegrityErrors"),
        1,
        period=60,
    )
    for name, resource in new.items():
        if name in resources:
            raise TemplateError(f"{name} is already in the base template")
        resources[name] = _with_find_and_forget_skips(resource, name)
    outputs.update(
        {
            "BeaconKeyArn": {"Value": getatt("BeaconKey"), "Export": {"Name": export_name("BeaconKeyArn")}},
            "TableStreamArn": {
                "Value": getatt("PiiTable", "StreamArn"),
                "Export": {"Name": export_name("TableStreamArn")},
            },
            "JobsTableName": {"Value": ref("JobsTable"), "Export": {"Name": export_name("JobsTableName")}},
        }
    )
    template["Parameters"]["IndexerIteratorAgeThresholdMs"] = {
        "Type": "Number",
        "Default": DEFAULT_INDEXER_ITERATOR_AGE_MS,
        "MinValue": 1000,
        "Description": "Age in milliseconds of the oldest unread stream record (indexer IteratorAge) that "
        "raises the alarm: search misses writes younger than this.",
    }


def _with_find_and_forget_skips(resource: dict[str, Any], name: str) -> dict[str, Any]:
    resource = _with_checkov_skips(resource, name)
    skips = FIND_AND_FORGET_SKIPS.get(name, {})
    if skips:
        listed = resource.setdefault("Metadata", {}).setdefault("checkov", {}).setdefault("skip", [])
        listed.extend({"id": check, "comment": reason} for check, reason in sorted(skips.items()))
    return resource


def indexer_integrity_filter_pattern() -> str:
    """CloudWatch filter pattern for the indexer's "does not open" lines (chalicelib.service.indexer)."""
    return f'{{ ($.level = "WARNING") && ($.message = "{INDEXER_INTEGRITY_MESSAGE}") }}'


def job_variables(stage: str) -> dict[str, Any]:
    """The environment of a job stage's functions (chalicelib/support/config.py reads each of them)."""
    variables: dict[str, Any] = {
        "PII_VAULT_TABLE": import_value("TableName"),
        # Pinned by ARN in every deployed function (config refuses an alias there), even offboarding's,
        # which has no KMS permission at all.
        "PII_VAULT_KMS_KEY_ID": import_value("KeyArn"),
        "PII_VAULT_JOBS_TABLE": import_value("JobsTableName"),
    }
    if stage == "indexer":
        variables["PII_VAULT_BEACON_KEY_ID"] = import_value("BeaconKeyArn")
        variables["PII_VAULT_STREAM_ARN"] = import_value("TableStreamArn")
    else:
        variables["PII_VAULT_IDEMPOTENCY_TABLE"] = import_value("IdempotencyTableName")
        variables["PII_VAULT_LEDGER_TABLE"] = import_value("LedgerTableName")
    variables.update(key_cache_settings(stage))
    variables.update(tenant_key_variables(stage))
    return variables


def job_merge_template(stage: str) -> dict[str, Any]:
    """Merged by ``chalice package --merge-template`` into a job stage's SAM template: no API,
    one function per job entry point, each with the base stack's role for the stage; the
    stream handler's event source reads the base stack's table stream (an import, no ARN)."""
    if stage not in JOB_STAGES:
        raise TemplateError(f"unknown job stage {stage!r}")
    title = stage.capitalize()
    functions: dict[str, Any] = {}
    for name in job_functions.FUNCTIONS[stage]:
        deployed = job_function_name(stage, name)
        properties: dict[str, Any] = {
            "FunctionName": sub(deployed),
            "Role": import_value(f"{title}RoleArn"),
            "Environment": {"Variables": job_variables(stage)},
            "ReservedConcurrentExecutions": ref("ReservedConcurrency"),
            "Tracing": "Active",
            "LoggingConfig": {
                "LogFormat": "JSON",
                "LogGroup": sub(f"/aws/lambda/{deployed}"),
                "ApplicationLogLevel": "INFO",
                "SystemLogLevel": "WARN",
            },
        }
        if name == job_functions.STREAM_FUNCTION:
            # chalice package writes the stage's PII_VAULT_STREAM_ARN (a placeholder in
            # .chalice/config.json) as the event source's Stream; the deep merge replaces it.
            properties["Events"] = {stream_event_name(name): {"Properties": {"Stream": import_value("TableStreamArn")}}}
        resource = _with_checkov_skips({"Type": "AWS::Serverless::Function", "Properties": properties})
        for entry in resource["Metadata"]["checkov"]["skip"]:
            entry["comment"] = JOB_CHECKOV_SKIPS.get(entry["id"], entry["comment"])
        functions[_cfn_name(name)] = resource
    return {
        "Description": f"{APP} {stage} stage, no API (chalice package + tools/stacks.py merge template)",
        "Parameters": {
            "Environment": _environment_parameter(),
            "ReservedConcurrency": {
                "Type": "Number",
                "Default": DEFAULTS["ReservedConcurrency"],
                "MinValue": 1,
                "Description": "Reserved concurrency of each function of the stage (bounds parallel segments "
                "and the KMS and DynamoDB load a job can make).",
            },
        },
        "Resources": functions,
    }


def example_find_and_forget_policies(key: str, table: str, role: Callable[[str], str]) -> dict[str, dict[str, Any]]:
    """The job roles' and the beacon key's policies, with example ARNs (for parliament)."""
    beacon_key = key.replace("0f6c2a1e", "2b3c4d5e")
    return {
        "indexer-role-policy.json": policies.indexer_policy(key, table, beacon_key),
        "offboard-role-policy.json": policies.offboard_policy(key, table),
        "beacon-key-policy.json": policies.beacon_key_policy(
            role("pii-vault-admin"), [role("reader"), role("indexer")]
        ),
    }


# -- writing, packaging ------------------------------------------------------------------


def render(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def write_templates(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "base.json"]
    written[0].write_text(render(base_template()), encoding="utf-8")
    for stage in STAGES:
        path = out / f"merge-{stage}.json"
        path.write_text(render(stage_merge_template(stage)), encoding="utf-8")
        written.append(path)
    for stage in JOB_STAGES:
        path = out / f"merge-{stage}.json"
        path.write_text(render(job_merge_template(stage)), encoding="utf-8")
        written.append(path)
    return written


def chalice_package(stage: str, out: Path, *, chalice: Path | None = None) -> Path:
    """``chalice package --stage <stage> --merge-template out/merge-<stage>.json out/<stage>``."""
    chalice = chalice or Path(sys.executable).with_name("chalice")
    target = out / stage
    shutil.rmtree(target, ignore_errors=True)
    for cache in (ROOT / "chalicelib").rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)  # chalice zips every file under chalicelib/
    env = {k: v for k, v in os.environ.items() if k not in ("PII_VAULT_ROLE", "AWS_ENDPOINT_URL")}
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # chalice wants a region even offline
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    subprocess.run(
        [
            str(chalice),
            "package",
            "--stage",
            stage,
            "--pkg-format",
            "cloudformation",
            "--merge-template",
            str((out / f"merge-{stage}.json").resolve()),
            str(target.resolve()),
        ],
        cwd=ROOT,
        env=env,
        check=True,
    )
    return target


def runtime_of(template: Mapping[str, Any]) -> str:
    """The runtime of the stage's functions (one runtime per package: they share the zip)."""
    runtimes = {
        str(r["Properties"]["Runtime"])
        for r in template["Resources"].values()
        if r.get("Type") == "AWS::Serverless::Function"
    }
    if len(runtimes) != 1:
        raise TemplateError(f"expected one function runtime in the package, found {sorted(runtimes)}")
    return runtimes.pop()


def add_bytecode(zip_path: Path, runtime: str, *, python: str = sys.executable) -> int:
    """Add ``__pycache__/*.pyc`` for every ``.py`` of the zip, compiled by the runtime's
    Python version. Lambda's /var/task is read-only, so without them every cold start
    compiles the code from source. ``unchecked-hash`` pycs are used whatever the files'
    timestamps are after unzipping. Returns the number of .pyc files added."""
    version = subprocess.run(
        [python, "-c", "import sys; print(f'python{sys.version_info[0]}.{sys.version_info[1]}')"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if version != runtime:
        raise TemplateError(f"the function runs {runtime} but {python} is {version}: bytecode would not be used")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(root)
            modes = {info.filename: info.external_attr for info in archive.infolist()}
        subprocess.run(
            [
                python,
                "-m",
                "compileall",
                "-q",
                "-j",
                "1",
                "--invalidation-mode",
                "unchecked-hash",
                "-d",
                "/var/task",
                str(root),
            ],
            check=True,
            capture_output=True,
        )
        files = sorted(p for p in root.rglob("*") if p.is_file())
        tmp_zip = zip_path.with_suffix(".tmp")
        with zipfile.ZipFile(tmp_zip, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in files:
                name = path.relative_to(root).as_posix()
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = modes.get(name, 0o644 << 16)
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, path.read_bytes())
        tmp_zip.replace(zip_path)
    return sum(1 for p in files if p.suffix == ".pyc")


def package(
    out: Path, *, stages: Sequence[str] = ALL_STAGES, bytecode: bool = True, log: Callable[[str], None] = print
) -> None:
    write_templates(out)
    for stage in stages:
        log(f"chalice package --stage {stage} --merge-template {out}/merge-{stage}.json {out}/{stage}")
        target = chalice_package(stage, out)
        if bytecode:
            template = json.loads((target / "sam.json").read_text(encoding="utf-8"))
            count = add_bytecode(target / "deployment.zip", runtime_of(template))
            log(f"  added {count} .pyc files compiled for {runtime_of(template)}")


def import_ms(zip_path: Path, stage: str, *, bytecode: bool, runs: int = 9, python: str = sys.executable) -> float:
    """Median import time of ``app`` (``-X importtime``, cumulative, ms) from the unzipped
    package, with its .pyc files or without them, as on a cold start: nothing is written
    (PYTHONDONTWRITEBYTECODE, like Lambda's read-only /var/task), the package first on sys.path, boto3 from the
    interpreter's site-packages (as Lambda's runtime provides it, with its bytecode)."""
    timings = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with zipfile.ZipFile(zip_path) as archive:
            for name in archive.namelist():
                if bytecode or not name.endswith(".pyc"):
                    archive.extract(name, root)
        env = {
            "PII_VAULT_ROLE": stage,
            "PYTHONDONTWRITEBYTECODE": "1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "PATH": os.environ.get("PATH", ""),
        }
        code = f"import sys; sys.path.insert(0, {str(root)!r}); import app"
        for _ in range(runs):
            result = subprocess.run(
                [python, "-X", "importtime", "-c", code], cwd=root, env=env, capture_output=True, text=True, check=True
            )
            line = next(x for x in result.stderr.splitlines() if x.rstrip().endswith("| app"))
            timings.append(int(line.split("|")[1]) / 1000)
    timings.sort()
    return round(timings[len(timings) // 2], 1)


# -- parameters per environment ---------------------------------------------------------


def load_params(env: str, params_dir: Path = PARAMS_DIR) -> dict[str, dict[str, Any]]:
    """``deploy/params/<env>.json``: {"base": {...}, "writer": {...}, "reader": {...}}."""
    if not re.fullmatch(ENVIRONMENT_PATTERN.strip("^$"), env):
        raise TemplateError(f"environment name must match {ENVIRONMENT_PATTERN}")
    data = json.loads((params_dir / f"{env}.json").read_text(encoding="utf-8"))
    stacks = {"base", *ALL_STAGES}
    if not isinstance(data, dict) or set(data) - stacks:
        raise TemplateError(f"{env}.json must hold an object with sections {sorted(stacks)}")
    return {name: {"Environment": env, **data.get(name, {})} for name in sorted(stacks)}


def parameter_overrides(values: Mapping[str, Any]) -> list[str]:
    """``Key=Value`` words for ``aws cloudformation deploy --parameter-overrides``."""
    words = []
    for key, value in values.items():
        text = ",".join(value) if isinstance(value, list) else str(value)
        if any(c.isspace() for c in text):
            raise TemplateError(f"parameter {key} contains whitespace")
        words.append(f"{key}={text}")
    return words


def example_policies() -> dict[str, dict[str, Any]]:
    """Every IAM, key and resource policy the templates hold, with example ARNs, for linters."""
    region, account = "us-east-1", "123456789012"
    key = f"arn:aws:kms:{region}:{account}:key/0f6c2a1e-8b3d-4c7a-9e52-7d1b4a6f3c80"
    table = f"arn:aws:dynamodb:{region}:{account}:table/{APP}-dev"
    api = f"arn:aws:execute-api:{region}:{account}:a1b2c3d4e5/*"

    def role(name: str) -> str:
        return f"arn:aws:iam::{account}:role/{name}"

    return {
        "writer-role-policy.json": policies.writer_policy(key, table),
        "reader-role-policy.json": policies.reader_policy(
            key,
            table,
            fleet_mac_key_arn=key.replace("0f6c2a1e", "1a2b3c4d"),
            beacon_key_arn=key.replace("0f6c2a1e", "2b3c4d5e"),
        ),
        "masked-role-policy.json": policies.masked_policy(key, table),
        "tracing-policy.json": policies.tracing_policy(),
        "key-policy.json": policies.key_policy(
            role("pii-vault-admin"), role("writer"), role("reader"), masked_role_arn=role("masked")
        ),
        "fleet-key-policy.json": policies.fleet_key_policy(role("pii-vault-admin"), role("reader")),
        **example_find_and_forget_policies(key, table, role),
        **example_tenant_key_policies(key, table, role),
        # As API Gateway stores it: it expands the template's "execute-api:/*" to the API's ARN.
        **{
            f"api-resource-policy-{stage}.json": access.api_resource_policy(stage, [role("app-backend")], api)
            for stage in STAGES
        },
        "api-resource-policy-empty.json": access.api_resource_policy("reader", [], api),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.stacks", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("templates", "package"):
        command = commands.add_parser(name)
        command.add_argument("--out", type=Path, default=ROOT / "out")
    commands.choices["package"].add_argument("--no-bytecode", action="store_true")
    params = commands.add_parser("params", help="print Key=Value parameter overrides of one stack")
    params.add_argument("--env", required=True)
    params.add_argument("--stack", required=True, choices=["base", *ALL_STAGES])
    cold = commands.add_parser("coldstart", help="median import time of app per packaged stage, with/without .pyc")
    cold.add_argument("--out", type=Path, default=ROOT / "out")
    cold.add_argument("--runs", type=int, default=9)
    example = commands.add_parser("policies", help="write example policy documents for linters")
    example.add_argument("dir", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "templates":
            for path in write_templates(args.out):
                print(f"wrote {path}")
        elif args.command == "package":
            package(args.out, bytecode=not args.no_bytecode)
        elif args.command == "coldstart":
            rows = [
                {
                    "stage": stage,
                    "import_ms_no_bytecode": import_ms(
                        args.out / stage / "deployment.zip", stage, bytecode=False, runs=args.runs
                    ),
                    "import_ms_shipped_bytecode": import_ms(
                        args.out / stage / "deployment.zip", stage, bytecode=True, runs=args.runs
                    ),
                    "runs": args.runs,
                }
                for stage in STAGES
            ]
            print(json.dumps(rows, indent=2))
        elif args.command == "params":
            print(" ".join(parameter_overrides(load_params(args.env)[args.stack])))
        else:
            args.dir.mkdir(parents=True, exist_ok=True)
            for name, document in example_policies().items():
                (args.dir / name).write_text(render(document), encoding="utf-8")
    except (OSError, ValueError, TemplateError, subprocess.CalledProcessError) as exc:
        print(f"tools.stacks: error: {exc}", file=sys.stderr)
        return 1
    return 0


# -- per-tenant keys and the rewrap job (chalicelib/keys/tenants.py, chalicelib/service/rewrap.py) ----


def tenant_key_arns() -> dict[str, Any]:
    return {_SENTINEL_TABLE + config.TENANTS_SUFFIX: getatt("TenantsTable")}


def tenant_key_variables(stage: str) -> dict[str, Any]:
    """The stages that resolve a tenant's key read the registry table (by name)."""
    if stage not in ("writer", "reader", "indexer"):
        return {}
    return {"PII_VAULT_TENANTS_TABLE": import_value("TenantsTableName")}


def add_tenant_keys(template: dict[str, Any]) -> None:
    """The tenant key registry: customer id -> own KMS key (written by tools.tenants only;
    the stages may GetItem). Recoverable and retained like the PII table: it decides which key
    shreds a tenant, and its history is what shows a downgrade (README "Per-tenant keys")."""
    template["Resources"]["TenantsTable"] = _retained(
        {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "TableName": sub(f"{APP}-${{Environment}}{config.TENANTS_SUFFIX}"),
                "BillingMode": "PAY_PER_REQUEST",
                "KeySchema": [{"AttributeName": layout.TENANT_PK, "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": layout.TENANT_PK, "AttributeType": "S"}],
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                "DeletionProtectionEnabled": True,
                "Tags": [{"Key": "app", "Value": APP}, {"Key": "environment", "Value": ref("Environment")}],
            },
        }
    )
    template["Resources"]["TenantsTable"]["Metadata"] = {
        "checkov": {
            "skip": [
                {
                    "id": "CKV_AWS_119",
                    "comment": "Holds tenant ids and key ARNs, no PII; SSE under a CMK would need a key-policy "
                    "statement for DynamoDB with Principal '*'. AWS owned key at rest.",
                }
            ]
        }
    }
    template["Outputs"]["TenantsTableName"] = {
        "Value": ref("TenantsTable"),
        "Export": {"Name": export_name("TenantsTableName")},
    }


def example_tenant_key_policies(key: str, table: str, role: Callable[[str], str]) -> dict[str, dict[str, Any]]:
    """The rewrap role's policy, a tenant key's policy and a stage's tag-scoped additions (for parliament)."""
    roles = {stage: role(stage) for stage in policies.TENANT_KEY_ACTIONS}
    return {
        "rewrap-role-policy.json": policies.rewrap_policy(key, None, table),
        "rewrap-to-new-key-policy.json": policies.rewrap_policy(key, key.replace("0f6c2a1e", "3c4d5e6f"), table),
        "tenant-key-policy.json": policies.tenant_key_policy(role("pii-vault-admin"), "acme", roles),
        "writer-tenant-keys-policy.json": policies.with_tenant_keys(
            policies.writer_policy(key, table), "writer", table
        ),
    }


if __name__ == "__main__":
    sys.exit(main())
