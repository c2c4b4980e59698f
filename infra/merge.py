"""The stage templates: what ``chalice package --merge-template`` merges into each stage's SAM
template.

Every function: the environment's name, the base stack's role for the stage, the stage's
environment (``infra.environment``), reserved concurrency, active tracing, the app and
environment tags and JSON logs into the base stack's group. An API stage also gets its REST
API's name, the caller allow-list as resource policy, the project's JSON error shape for the
answers API Gateway gives itself (gateway responses), access logs, throttling and no caching.
A job stage's stream function reads the base stack's table stream (an import, no ARN).

The ``chalice deploy`` path applies the same template, evaluated for one environment
(``infra.deployment``): what Chalice has a setting for goes into the generated project's config,
the rest into the post-deploy step.
"""

from __future__ import annotations

import json
from typing import Any

from chalice.utils import to_cfn_resource_name

from chalicelib.api.gateway_responses import openapi_extension
from chalicelib.stages import STAGE_NAMES, Function, Stage, stage
from chalicelib.stages.registry import STREAM_DELIVERY
from infra.arns import function_name
from infra.cfn import APP, ENV_PREFIX, Resource, Template, TemplateError, import_value, join, ref, sub
from infra.environment import CALLERS_PARAMETER, variables
from infra.iam.callers import api_resource_policy
from infra.observability import ACCESS_LOG_FORMAT, function_id
from infra.params import stage_parameters
from infra.roles import role_id
from infra.specs import FAILURE_QUEUE, STREAM_OUTPUT

JOB_SKIPS = {
    "CKV_AWS_116": "No dead-letter queue: nothing invokes a job function asynchronously. The stream handler's "
    "failed batch is bisected and retried by its event source mapping, then parked in the base stack's "
    "failure queue (its OnFailure destination, alarmed); the per-segment functions are invoked "
    "synchronously by tools.jobs, which sees the error.",
}


def _function(entry: Stage, function: Function, skips: dict[str, str] | None = None) -> Resource:
    deployed = function_name(entry.name, function.name, ENV_PREFIX)
    properties: dict[str, Any] = {
        "FunctionName": sub(deployed),
        "Role": import_value(f"{role_id(entry.name)}Arn"),
        "Environment": {"Variables": variables(entry)},
        "ReservedConcurrentExecutions": ref("ReservedConcurrency"),
        "Tracing": "Active",
        # Beside chalice's own aws-chalice tag; the chalice deploy path sets the same (infra.chalice_config).
        "Tags": {"app": APP, "environment": ref("Environment")},
        # Chalice has no setting for it: one JSON event per log line (audit lines included).
        "LoggingConfig": {
            "LogFormat": "JSON",
            "LogGroup": sub(f"/aws/lambda/{deployed}"),
            "ApplicationLogLevel": "INFO",
            "SystemLogLevel": "WARN",
        },
    }
    if function.trigger == "stream":
        # chalice package writes the stage's PII_VAULT_STREAM_ARN (a placeholder in
        # .chalice/config.json) as the event source's Stream; the deep merge replaces it. A
        # failed batch is bisected and retried a bounded number of times, then its position is
        # parked in the failure queue and the shard moves on (the registry's STREAM_DELIVERY).
        event = str(to_cfn_resource_name(f"{function.name}-dynamodb-event-source"))
        properties["Events"] = {
            event: {
                "Properties": {
                    "Stream": import_value(STREAM_OUTPUT),
                    "BisectBatchOnFunctionError": STREAM_DELIVERY.bisect,
                    "MaximumRetryAttempts": STREAM_DELIVERY.max_retry_attempts,
                    "DestinationConfig": {"OnFailure": {"Destination": import_value(FAILURE_QUEUE.output)}},
                }
            }
        }
    return Resource("AWS::Serverless::Function", properties, skips=skips or {})


def _rest_api(entry: Stage) -> Resource:
    name = function_name(entry.name, entry.functions[0].name, ENV_PREFIX)
    resource_policy = {
        "Fn::If": [
            "HasAllowedCallers",
            api_resource_policy(entry.name, ref(CALLERS_PARAMETER)),
            api_resource_policy(entry.name, []),
        ]
    }
    return Resource(
        "AWS::Serverless::Api",
        {
            "Name": sub(name),
            "TracingEnabled": True,
            "CacheClusterEnabled": False,
            "AccessLogSetting": {
                "DestinationArn": import_value(f"{entry.name.capitalize()}AccessLogGroupArn"),
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
            # Merged into chalice's swagger (the routes stay chalice's). API Gateway's own answers
            # (unknown route, unsigned or refused caller, throttled, 4xx, 5xx) in the project's
            # error shape, as chalicelib states them for the local gateway too.
            "DefinitionBody": {"x-amazon-apigateway-policy": resource_policy, **openapi_extension()},
        },
    )


def merge_template(stage_name: str) -> Template:
    """The merge template of one stage (API or job)."""
    if stage_name not in STAGE_NAMES:
        raise TemplateError(f"unknown stage {stage_name!r}; the registry's are {', '.join(STAGE_NAMES)}")
    entry = stage(stage_name)
    template = Template(
        f"{APP} {entry.name} stage"
        + (", no API" if entry.kind == "job" else "")
        + " (chalice package + infra merge template)",
        format_version=False,
    )
    for name, declaration in stage_parameters(entry).items():
        template.parameter(name, declaration)
    if entry.kind == "api":
        template.condition("HasAllowedCallers", {"Fn::Not": [{"Fn::Equals": [join("", ref(CALLERS_PARAMETER)), ""]}]})
        (function,) = entry.functions
        template.add(function_id(function), _function(entry, function))
        template.add("RestAPI", _rest_api(entry))
    else:
        for function in entry.functions:
            template.add(function_id(function), _function(entry, function, JOB_SKIPS))
    return template
