"""What one stage is, deployed in one environment, as concrete values: for the deploy path that
does not go through CloudFormation (``chalice deploy`` from a generated project: the project's
config, ``infra.chalice_config``, and what Chalice cannot set, ``infra.postdeploy``).

Every value is the stage's merge template (``infra.merge``) evaluated for the environment
(``infra.resolve``: the base stack's outputs, the stage's parameters in
``deploy/params/<env>.json``), except the function environment, which is ``infra.environment``
resolved for the same outputs and parameters (the merge template renders that same source;
the two are checked equal here), and the functions' timeouts and memory, which are the registry's (on
the package path chalice writes them from ``.chalice/config.json``, generated from the registry).

Every property the merge template sets is taken by exactly one of those two consumers; one that
neither takes raises ``TemplateError`` here, so a setting added to the merge templates cannot be
silently missing from the ``chalice deploy`` path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chalicelib.stages import stage
from chalicelib.support.environment import Key
from infra.arns import function_name, key_scope
from infra.cfn import APP, TemplateError
from infra.environment import resolve
from infra.merge import merge_template
from infra.observability import API_STAGE_NAME, function_id
from infra.params import PARAMS_DIR, stage_parameter_values, stage_parameters
from infra.resolve import Context, pseudo_parameters, resolve_template
from infra.specs import KEYS, STREAM_OUTPUT


@dataclass(frozen=True)
class FunctionDeployment:
    name: str  # the deployed function's name, pii-vault-<env>-<stage>[-<function>]
    handler: str  # the function's name in the app (chalice's lambda_functions key)
    logical_id: str  # chalice package's logical id
    trigger: str
    timeout_seconds: int
    memory_mb: int
    logging_config: dict[str, str]  # LoggingConfig (LogFormat JSON into the base stack's group)
    # The merge template's settings of the function's stream event source beyond its stream
    # (retries, bisection, on-failure destination, ...): SAM event property -> value.
    event_source: dict[str, Any] = field(default_factory=dict)

    @property
    def log_group(self) -> str:
        return self.logging_config["LogGroup"]


@dataclass(frozen=True)
class ApiDeployment:
    """An API stage's REST API settings, as the merge template sets them."""

    name: str  # what the alarms and the dashboard look for: pii-vault-<env>-<stage>
    stage_name: str  # the API Gateway stage (chalice's api_gateway_stage)
    resource_policy: dict[str, Any]  # the caller allow-list
    tracing: bool
    cache_cluster: bool
    access_log: dict[str, str]  # DestinationArn, Format
    method_settings: tuple[dict[str, Any], ...]
    gateway_responses: dict[str, dict[str, Any]]  # response type -> statusCode, parameters, templates


@dataclass(frozen=True)
class StageDeployment:
    stage: str
    environment: str
    role_arn: str
    variables: dict[str, str]
    functions: tuple[FunctionDeployment, ...]
    reserved_concurrency: int
    tags: dict[str, str]
    tracing: bool
    api: ApiDeployment | None = None


def stage_context(
    stage_name: str, env: str, outputs: Mapping[str, str], params_dir: Path = PARAMS_DIR
) -> tuple[Context, dict[str, Any]]:
    """The evaluation context of the stage's stack, and its parameter values as CloudFormation
    passes them (strings; a comma-delimited list as a list of strings)."""
    declared = stage_parameters(stage(stage_name))
    parameters: dict[str, Any] = {}
    for name, value in stage_parameter_values(env, stage_name, params_dir).items():
        if declared.get(name, {}).get("Type") == "CommaDelimitedList":
            items = value if isinstance(value, list | tuple) else str(value).split(",")
            parameters[name] = [str(item) for item in items if str(item)]
        else:
            parameters[name] = str(value)
    partition, region, account = key_scope(outputs[KEYS[Key.DATA].output])
    return Context(env, parameters, outputs, pseudo_parameters(region, account, partition)), parameters


def stage_deployment(
    stage_name: str, env: str, outputs: Mapping[str, str], params_dir: Path = PARAMS_DIR
) -> StageDeployment:
    """``stage_name`` in ``env``: ``outputs`` are the base stack's (output name -> value)."""
    entry = stage(stage_name)
    context, parameters = stage_context(stage_name, env, outputs, params_dir)
    resources = resolve_template(merge_template(stage_name).render(), context)
    variables = resolve(entry, outputs, parameters)
    functions, roles, concurrency, tracing, tags = [], set(), set(), set(), []
    for function in entry.functions:
        properties = dict(resources.pop(function_id(function))["Properties"])
        name = function_name(stage_name, function.name, f"{APP}-{env}")
        if properties.pop("FunctionName") != name:
            raise TemplateError(f"{stage_name}: the merge template names the function otherwise than chalice deploy")
        roles.add(properties.pop("Role"))
        concurrency.add(int(properties.pop("ReservedConcurrentExecutions")))
        tracing.add(properties.pop("Tracing") == "Active")
        tags.append(properties.pop("Tags", {}))
        if properties.pop("Environment") != {"Variables": variables}:
            raise TemplateError(f"{stage_name}: the merge template's environment is not infra.environment's")
        events = properties.pop("Events", {})
        event_source: dict[str, Any] = {}
        for event in events.values():
            event_source = dict(event["Properties"])
            # The stream itself: chalice reads it from the stage's PII_VAULT_STREAM_ARN (the app's decorator).
            if event_source.pop("Stream") != outputs[STREAM_OUTPUT]:
                raise TemplateError(f"{stage_name}: the stream event does not read the base stack's stream")
        functions.append(
            FunctionDeployment(
                name=name,
                handler=function.name,
                logical_id=function_id(function),
                trigger=function.trigger,
                timeout_seconds=function.timeout_seconds,
                memory_mb=function.memory_mb,
                logging_config=properties.pop("LoggingConfig"),
                event_source=event_source,
            )
        )
        _nothing_left(stage_name, function.name, properties)
    api = _api(stage_name, resources.pop("RestAPI")["Properties"]) if entry.kind == "api" else None
    _nothing_left(stage_name, "the template", resources)
    if len(roles) != 1 or len(concurrency) != 1 or len(tracing) != 1 or any(t != tags[0] for t in tags):
        raise TemplateError(f"{stage_name}: the functions of one stage differ in role, concurrency, tracing or tags")
    return StageDeployment(
        stage=stage_name,
        environment=env,
        role_arn=str(roles.pop()),
        variables=variables,
        functions=tuple(functions),
        reserved_concurrency=concurrency.pop(),
        tags={str(k): str(v) for k, v in tags[0].items()},
        tracing=tracing.pop(),
        api=api,
    )


def _api(stage_name: str, resolved: Mapping[str, Any]) -> ApiDeployment:
    properties = dict(resolved)
    body = dict(properties.pop("DefinitionBody"))
    api = ApiDeployment(
        name=properties.pop("Name"),
        stage_name=API_STAGE_NAME,
        resource_policy=body.pop("x-amazon-apigateway-policy"),
        tracing=bool(properties.pop("TracingEnabled")),
        cache_cluster=bool(properties.pop("CacheClusterEnabled")),
        access_log=properties.pop("AccessLogSetting"),
        method_settings=tuple(properties.pop("MethodSettings")),
        gateway_responses=body.pop("x-amazon-apigateway-gateway-responses"),
    )
    _nothing_left(stage_name, "RestAPI", properties)
    _nothing_left(stage_name, "RestAPI DefinitionBody", body)
    return api


def _nothing_left(stage_name: str, where: str, left: Mapping[str, Any]) -> None:
    if left:
        raise TemplateError(
            f"{stage_name}: {where}: the merge template sets {', '.join(sorted(left))}, which the chalice deploy "
            "path does not apply (infra.deployment, infra.chalice_config, infra.postdeploy)"
        )
