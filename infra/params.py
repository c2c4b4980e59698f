"""The templates' parameters and the per-environment values in ``deploy/params/<env>.json``.

A parameter file holds one section per stack: ``base`` and one per stage (every stage of
the registry), each a map of that stack's parameter names to values. Every setting of a
stage that may differ per environment (the caller allow-list, concurrency, throttling, and
each tunable the stage reads: cache bounds, key scope, previous keys, lifetimes) is a
parameter of the stage's stack, with the setting's default. ``load_params`` refuses a
section or a name its stack does not declare, so a typo fails before a deployment.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chalicelib.stages import STAGES, Stage, stage
from chalicelib.support.config import default_text, setting_domain
from chalicelib.support.environment import Variable
from infra.cfn import ENVIRONMENT_PATTERN, TemplateError
from infra.environment import CALLERS_PARAMETER, tunable_parameter, tunable_settings

ROOT = Path(__file__).resolve().parent.parent
PARAMS_DIR = ROOT / "deploy" / "params"
PRINCIPAL_PATTERN = r"^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/[A-Za-z0-9+=,.@_/-]{1,512}$"
# CloudWatch Logs' allowed retention periods.
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
# How long the indexer may lag behind the table (IteratorAge of its stream) before the alarm.
DEFAULT_INDEXER_ITERATOR_AGE_MS = 60_000


def environment_parameter() -> dict[str, Any]:
    return {
        "Type": "String",
        "AllowedPattern": ENVIRONMENT_PATTERN,
        "Description": "Environment name (dev, prod, ...): part of every resource name and export.",
    }


def base_parameters() -> dict[str, dict[str, Any]]:
    return {
        "Environment": environment_parameter(),
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
        "IndexerIteratorAgeThresholdMs": {
            "Type": "Number",
            "Default": DEFAULT_INDEXER_ITERATOR_AGE_MS,
            "MinValue": 1000,
            "Description": "Age in milliseconds of the oldest unread stream record (indexer IteratorAge) that "
            "raises the alarm: search misses writes younger than this.",
        },
    }


def _tunable_declaration(variable: Variable) -> dict[str, Any]:
    """A tunable's parameter: its default, and the values the function accepts (checked by
    CloudFormation before a deploy, as the function checks them at start)."""
    default, description = default_text(variable.field), f"{variable.env}: {variable.doc}"
    kind, domain = setting_domain(variable.field)
    if kind == "list":
        return {"Type": "CommaDelimitedList", "Default": default, "Description": f"{description} (comma-separated)."}
    if kind == "choice":
        return {"Type": "String", "Default": default, "AllowedValues": list(domain), "Description": f"{description}."}
    if kind == "int":
        minimum, maximum = domain
        return {
            "Type": "Number",
            "Default": int(default),
            "MinValue": minimum,
            "MaxValue": maximum,
            "Description": f"{description}.",
        }
    return {"Type": "String", "Default": default, "Description": f"{description}."}


def stage_parameters(entry: Stage) -> dict[str, dict[str, Any]]:
    """The parameters of a stage's stack: the environment, the allow-list and throttling (API
    stages), the reserved concurrency, and one per tunable setting of the stage."""
    parameters: dict[str, dict[str, Any]] = {"Environment": environment_parameter()}
    if entry.kind == "api":
        parameters[CALLERS_PARAMETER] = {
            "Type": "CommaDelimitedList",
            "Default": "",
            "Description": "IAM role/user ARNs allowed to call this stage (sessions of a listed role match). "
            "Everyone else is denied by the API resource policy and by the function. "
            "Empty: nobody.",
        }
        parameters["ReservedConcurrency"] = {
            "Type": "Number",
            "Default": DEFAULTS["ReservedConcurrency"],
            "MinValue": 1,
        }
        parameters["ThrottlingRateLimit"] = {
            "Type": "Number",
            "Default": DEFAULTS["ThrottlingRateLimit"],
            "MinValue": 1,
            "Description": "Steady requests per second for the stage.",
        }
        parameters["ThrottlingBurstLimit"] = {
            "Type": "Number",
            "Default": DEFAULTS["ThrottlingBurstLimit"],
            "MinValue": 1,
        }
    else:
        parameters["ReservedConcurrency"] = {
            "Type": "Number",
            "Default": DEFAULTS["ReservedConcurrency"],
            "MinValue": 1,
            "Description": "Reserved concurrency of each function of the stage (bounds parallel segments "
            "and the KMS and DynamoDB load a job can make).",
        }
    for variable in tunable_settings(entry):
        parameters[tunable_parameter(variable)] = _tunable_declaration(variable)
    return parameters


def stack_parameters() -> dict[str, dict[str, dict[str, Any]]]:
    """Stack name (``base`` or a stage) -> its declared parameters."""
    return {"base": base_parameters(), **{entry.name: stage_parameters(entry) for entry in STAGES}}


def load_params(env: str, params_dir: Path = PARAMS_DIR) -> dict[str, dict[str, Any]]:
    """``deploy/params/<env>.json`` as stack -> parameter values, ``Environment`` included."""
    if not re.fullmatch(ENVIRONMENT_PATTERN.strip("^$"), env):
        raise TemplateError(f"environment name must match {ENVIRONMENT_PATTERN}")
    data = json.loads((params_dir / f"{env}.json").read_text(encoding="utf-8"))
    declared = stack_parameters()
    if not isinstance(data, dict) or set(data) - set(declared):
        raise TemplateError(f"{env}.json must hold an object with sections {sorted(declared)}")
    for name, values in data.items():
        unknown = sorted(set(values) - set(declared[name])) if isinstance(values, dict) else ["(not an object)"]
        if unknown:
            raise TemplateError(f"{env}.json: {name}: not a parameter of the {name} stack: {', '.join(unknown)}")
    return {name: {"Environment": env, **data.get(name, {})} for name in sorted(declared)}


def parameter_overrides(values: Mapping[str, Any]) -> list[str]:
    """``Key=Value`` words for ``aws cloudformation deploy --parameter-overrides``."""
    words = []
    for key, value in values.items():
        text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
        if any(c.isspace() for c in text):
            raise TemplateError(f"parameter {key} contains whitespace")
        words.append(f"{key}={text}")
    return words


def stage_parameter_values(env: str, stage_name: str, params_dir: Path = PARAMS_DIR) -> dict[str, Any]:
    """One stage's parameters in ``env``: the file's values over the declared defaults."""
    declared = stage_parameters(stage(stage_name))
    values = {name: d["Default"] for name, d in declared.items() if "Default" in d}
    return {**values, **load_params(env, params_dir)[stage_name]}
