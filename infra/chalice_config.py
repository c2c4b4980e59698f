"""Chalice's configs, generated from the stage registry: never edited by hand.

- The tracked ``.chalice/config.json``: one stage per registry stage, for ``chalice package``
  (the package path: the merge template replaces every stand-in) and ``chalice local --stage
  <api stage>`` (the local stack). It names no account and no environment: a function's role
  and the table's stream are stand-ins, and every other setting comes from the process
  environment (``python -m tools.localenv``) or, deployed, from the merge template.
  ``python -m infra chalice-config [--check]`` writes it, or fails if it is stale (a test too).
- An environment's project config (``.deploy/<env>/.chalice/config.json``, untracked): stages
  ``<env>-<stage>`` with the concrete values of ``infra.deployment`` (the base stack's role, the
  stage's environment, the caller allow-list as ``api_gateway_policy_file``, reserved
  concurrency, tracing, tags, per-function timeouts and memory), for ``chalice deploy``. No
  ``log_retention_in_days``: the base stack owns the log groups (and their retention).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from chalicelib.stages import STAGES, Stage
from chalicelib.stages.registry import API_TIMEOUT_SECONDS, MEMORY_MB
from chalicelib.support.environment import ROLE_VARIABLE, StreamArn
from infra.cfn import APP
from infra.deployment import StageDeployment
from infra.observability import API_STAGE_NAME

ENDPOINT_TYPE = "REGIONAL"
# Stand-ins of the tracked config. The merge template replaces both in every packaged stage
# (tests/integration/test_package.py); `chalice deploy --stage <stage>` from the checkout stops
# at CreateFunction with the role's, which says where the deployable project comes from.
ROLE_STAND_IN = "not-deployable-from-the-checkout:run-python-m-infra-chalice-project-see-docs-deploy.md"
STREAM_STAND_IN = "replaced-by-the-merge-template-with-the-base-stack-stream"


def _functions(entry: Stage) -> dict[str, dict[str, int]]:
    """Per-function timeout and memory, the registry's (an API stage's one function: api_handler)."""
    return {
        function.name: {"lambda_timeout": function.timeout_seconds, "lambda_memory_size": function.memory_mb}
        for function in entry.functions
    }


def _common() -> dict[str, Any]:
    return {
        "version": "2.0",
        "app_name": APP,
        "api_gateway_endpoint_type": ENDPOINT_TYPE,
        "lambda_timeout": API_TIMEOUT_SECONDS,
        "lambda_memory_size": MEMORY_MB,
        "xray": True,
    }


def tracked_config() -> dict[str, Any]:
    """``.chalice/config.json``: every stage of the registry, stand-ins for what is per environment."""
    stages: dict[str, Any] = {}
    for entry in STAGES:
        variables = {ROLE_VARIABLE: entry.name}
        variables.update({v.env: STREAM_STAND_IN for v in entry.variables if isinstance(v.source, StreamArn)})
        section: dict[str, Any] = {"api_gateway_stage": API_STAGE_NAME} if entry.kind == "api" else {}
        section.update(
            {
                "environment_variables": variables,
                "manage_iam_role": False,
                "iam_role_arn": ROLE_STAND_IN,
                "lambda_functions": _functions(entry),
            }
        )
        stages[entry.name] = section
    return {**_common(), "stages": stages}


def policy_file(deployment: StageDeployment) -> str:
    """The API resource policy's file name under the project's ``.chalice/``."""
    return f"api-policy-{deployment.environment}-{deployment.stage}.json"


def chalice_stage(deployment: StageDeployment) -> str:
    return f"{deployment.environment}-{deployment.stage}"


def environment_config(deployments: Sequence[StageDeployment]) -> dict[str, Any]:
    """An environment's project config: ``<env>-<stage>`` for each deployment."""
    stages: dict[str, Any] = {}
    for deployment in deployments:
        section: dict[str, Any] = {}
        if deployment.api is not None:
            section["api_gateway_stage"] = deployment.api.stage_name
            section["api_gateway_policy_file"] = policy_file(deployment)
        functions = {
            f.handler: {"lambda_timeout": f.timeout_seconds, "lambda_memory_size": f.memory_mb}
            for f in deployment.functions
        }
        section.update(
            {
                "environment_variables": deployment.variables,
                "manage_iam_role": False,
                "iam_role_arn": deployment.role_arn,
                "reserved_concurrency": deployment.reserved_concurrency,
                "xray": deployment.tracing,
                "tags": deployment.tags,
                "lambda_functions": functions,
            }
        )
        stages[chalice_stage(deployment)] = section
    return {**_common(), "stages": stages}


def render(config: dict[str, Any]) -> str:
    return json.dumps(config, indent=2) + "\n"
