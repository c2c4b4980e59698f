"""What one stage is, deployed in one environment, as concrete values: for a deploy path that
does not go through CloudFormation's intrinsics (``chalice deploy`` from a generated project,
issue 22) and for checks of a deployed stage.

Every value comes from where the merge templates take it: the function environment from
``infra.environment`` (the base stack's outputs and the stage's parameters in
``deploy/params/<env>.json``), the role from the base stack's outputs, the API resource policy
from ``infra.iam.callers``, the functions (names, timeouts, memory) from the registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chalicelib.stages import stage
from infra.arns import function_name
from infra.cfn import APP
from infra.environment import CALLERS_PARAMETER, resolve
from infra.iam import tracing_policy
from infra.iam.callers import api_resource_policy
from infra.observability import function_id
from infra.params import PARAMS_DIR, stage_parameter_values
from infra.roles import role_id


@dataclass(frozen=True)
class FunctionDeployment:
    name: str  # the deployed function's name, pii-vault-<env>-<stage>[-<function>]
    handler: str  # the function's name in the app (chalice's lambda_functions key)
    logical_id: str  # chalice package's logical id
    trigger: str
    timeout_seconds: int
    memory_mb: int
    log_group: str


@dataclass(frozen=True)
class StageDeployment:
    stage: str
    environment: str
    role_arn: str
    variables: dict[str, str]
    functions: tuple[FunctionDeployment, ...]
    reserved_concurrency: int
    tags: dict[str, str]
    tracing: bool = True
    log_format: str = "JSON"
    # API stages: the REST API's name (what the alarms and dashboard look for), its resource
    # policy (the allow-list), and the stage's throttling.
    api_name: str | None = None
    api_resource_policy: dict[str, Any] | None = None
    throttling: tuple[int, int] | None = None
    # The role's policies are the base stack's; this one is what Tracing needs.
    role_policies: tuple[dict[str, Any], ...] = field(default_factory=lambda: (tracing_policy(),))


def _list(value: object) -> list[str]:
    if isinstance(value, list | tuple):
        return [str(v) for v in value if str(v)]
    return [part for part in str(value).split(",") if part]


def stage_deployment(
    stage_name: str, env: str, outputs: Mapping[str, str], params_dir: Path = PARAMS_DIR
) -> StageDeployment:
    """``stage_name`` in ``env``: ``outputs`` are the base stack's (output name -> value)."""
    entry = stage(stage_name)
    parameters = stage_parameter_values(env, stage_name, params_dir)
    prefix = f"{APP}-{env}"
    functions = tuple(
        FunctionDeployment(
            name=function_name(stage_name, f.name, prefix),
            handler=f.name,
            logical_id=function_id(f),
            trigger=f.trigger,
            timeout_seconds=f.timeout_seconds,
            memory_mb=f.memory_mb,
            log_group=f"/aws/lambda/{function_name(stage_name, f.name, prefix)}",
        )
        for f in entry.functions
    )
    api: dict[str, Any] = {}
    if entry.kind == "api":
        api = {
            "api_name": functions[0].name,
            "api_resource_policy": api_resource_policy(stage_name, _list(parameters.get(CALLERS_PARAMETER, ""))),
            "throttling": (int(parameters["ThrottlingRateLimit"]), int(parameters["ThrottlingBurstLimit"])),
        }
    return StageDeployment(
        stage=stage_name,
        environment=env,
        role_arn=outputs[f"{role_id(stage_name)}Arn"],
        variables=resolve(entry, outputs, parameters),
        functions=functions,
        reserved_concurrency=int(parameters["ReservedConcurrency"]),
        tags={"app": APP, "environment": env},
        **api,
    )
