"""After every ``chalice deploy`` of a stage: what the merge template sets and Chalice cannot.

Idempotent (every call sets a value, none adds one), so it runs after every deploy, and a rerun
repairs drift. For each function: the JSON log format into the base stack's log group (the
base stack's metric filters match JSON fields: with text logs the integrity and KMS alarms
never fire), and a stream function's event source settings beyond its stream. For an API
stage's REST API: its name ``pii-vault-<env>-<stage>`` (Chalice names it after ``app_name``;
the alarms and dashboard look for this one), the gateway responses (API Gateway's own answers
in the project's error shape; a new deployment publishes them), then the stage: tracing, no
cache cluster, access logs, and method settings (throttling, metrics, no data trace, no
caching). Every value comes from ``infra.deployment`` (the merge template, evaluated).

The REST API is the one ``chalice deploy`` recorded in the project
(``.chalice/deployed/<env>-<stage>.json``): several APIs carry Chalice's name, one per stage.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.cfn import TemplateError
from infra.deployment import ApiDeployment, FunctionDeployment, StageDeployment

# CloudFormation's MethodSetting properties -> the setting's path in UpdateStage's patch operations.
METHOD_SETTING_PATHS = {
    "CachingEnabled": "caching/enabled",
    "CacheTtlInSeconds": "caching/ttlInSeconds",
    "CacheDataEncrypted": "caching/dataEncrypted",
    "DataTraceEnabled": "logging/dataTrace",
    "LoggingLevel": "logging/loglevel",
    "MetricsEnabled": "metrics/enabled",
    "ThrottlingBurstLimit": "throttling/burstLimit",
    "ThrottlingRateLimit": "throttling/rateLimit",
}
# SAM's DynamoDB event properties that UpdateEventSourceMapping takes as they are. StartingPosition
# is fixed when the mapping is created (by the app's decorator, on both paths); Stream is the
# mapping's identity.
EVENT_SOURCE_SETTINGS = frozenset(
    {
        "BatchSize",
        "BisectBatchOnFunctionError",
        "Enabled",
        "FilterCriteria",
        "FunctionResponseTypes",
        "MaximumBatchingWindowInSeconds",
        "MaximumRecordAgeInSeconds",
        "MaximumRetryAttempts",
        "ParallelizationFactor",
        "TumblingWindowInSeconds",
    }
)


class PostDeployError(RuntimeError):
    """The stage is not deployed as the step expects (no chalice record, no mapping)."""


@dataclass(frozen=True)
class Clients:
    lambda_: Any
    apigateway: Any


def deployed_rest_api(project: Path, chalice_stage: str) -> str:
    """The REST API id ``chalice deploy`` recorded for the stage in the project."""
    record = project / ".chalice" / "deployed" / f"{chalice_stage}.json"
    try:
        resources = json.loads(record.read_text(encoding="utf-8"))["resources"]
    except (OSError, ValueError, KeyError) as exc:
        raise PostDeployError(f"no chalice deploy record {record} ({exc}): run chalice deploy first") from None
    for resource in resources:
        if resource.get("resource_type") == "rest_api":
            return str(resource["rest_api_id"])
    raise PostDeployError(f"{record} records no REST API")


def apply(deployment: StageDeployment, clients: Clients, project: Path, *, log: Callable[[str], None] = print) -> None:
    for function in deployment.functions:
        _function(function, clients.lambda_, deployment, log)
    if deployment.api is not None:
        api_id = deployed_rest_api(project, f"{deployment.environment}-{deployment.stage}")
        _api(deployment.api, api_id, clients.apigateway, log)


def _function(
    function: FunctionDeployment, lambda_: Any, deployment: StageDeployment, log: Callable[[str], None]
) -> None:
    waiter = lambda_.get_waiter("function_updated_v2")
    waiter.wait(FunctionName=function.name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    lambda_.update_function_configuration(FunctionName=function.name, LoggingConfig=function.logging_config)
    log(f"{function.name}: logging {json.dumps(function.logging_config, sort_keys=True)}")
    if not function.event_source:
        return
    stream = deployment.variables.get("PII_VAULT_STREAM_ARN", "")
    mapping = event_source_mapping(lambda_, function.name, stream)
    if mapping is None:
        raise PostDeployError(f"{function.name} has no event source mapping on {stream}")
    settings = event_source_settings(function.event_source)
    lambda_.update_event_source_mapping(UUID=mapping["UUID"], **settings)
    log(f"{function.name}: event source {mapping['UUID']} {json.dumps(settings, sort_keys=True)}")


def event_source_mapping(lambda_: Any, function: str, stream: str) -> dict[str, Any] | None:
    """The function's one mapping on ``stream`` (matched by the function's ARN, which every
    mapping reports, whether it was created with the function's name or its ARN)."""
    pages = lambda_.get_paginator("list_event_source_mappings").paginate(EventSourceArn=stream)
    found = [m for page in pages for m in page["EventSourceMappings"] if m["FunctionArn"].endswith(f":{function}")]
    if len(found) > 1:
        raise PostDeployError(f"{function} has {len(found)} event source mappings on {stream}")
    return found[0] if found else None


def event_source_settings(event: Mapping[str, Any]) -> dict[str, Any]:
    """SAM DynamoDB event properties as UpdateEventSourceMapping's parameters."""
    settings: dict[str, Any] = {}
    for name, value in event.items():
        if name == "DestinationConfig":
            settings[name] = {"OnFailure": {"Destination": value["OnFailure"]["Destination"]}}
        elif name in EVENT_SOURCE_SETTINGS:
            settings[name] = value
        else:
            raise TemplateError(f"event source property {name}: not applied by the post-deploy step")
    return settings


def _api(api: ApiDeployment, api_id: str, apigateway: Any, log: Callable[[str], None]) -> None:
    apigateway.update_rest_api(restApiId=api_id, patchOperations=[_replace("/name", api.name)])
    log(f"REST API {api_id}: name {api.name}")
    for kind, response in api.gateway_responses.items():
        arguments: dict[str, Any] = {
            "restApiId": api_id,
            "responseType": kind,
            "responseParameters": response["responseParameters"],
            "responseTemplates": response["responseTemplates"],
        }
        if "statusCode" in response:
            arguments["statusCode"] = response["statusCode"]
        apigateway.put_gateway_response(**arguments)
    # Gateway responses take effect with the API's next deployment.
    apigateway.create_deployment(restApiId=api_id, stageName=api.stage_name, description="post-deploy")
    log(f"REST API {api_id}: gateway responses {', '.join(sorted(api.gateway_responses))}, deployed")
    operations = stage_operations(api)
    apigateway.update_stage(restApiId=api_id, stageName=api.stage_name, patchOperations=operations)
    log(f"REST API {api_id} stage {api.stage_name}: " + ", ".join(f"{o['path']}={o['value']}" for o in operations))


def stage_operations(api: ApiDeployment) -> list[dict[str, str]]:
    """UpdateStage's patch operations for the stage settings the merge template sets."""
    operations = [
        _replace("/tracingEnabled", api.tracing),
        _replace("/cacheClusterEnabled", api.cache_cluster),
        _replace("/accessLogSettings/destinationArn", api.access_log["DestinationArn"]),
        _replace("/accessLogSettings/format", api.access_log["Format"]),
    ]
    for setting in api.method_settings:
        values = dict(setting)
        resource = values.pop("ResourcePath")
        method = values.pop("HttpMethod")
        # "/*/*": every resource and method; a resource path's slashes are escaped as ~1.
        prefix = "/*" if resource == "/*" else "/" + resource.replace("/", "~1")
        for name, value in values.items():
            if name not in METHOD_SETTING_PATHS:
                raise TemplateError(f"method setting {name}: not applied by the post-deploy step")
            operations.append(_replace(f"{prefix}/{method}/{METHOD_SETTING_PATHS[name]}", value))
    return operations


def _replace(path: str, value: object) -> dict[str, str]:
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return {"op": "replace", "path": path, "value": text}
