"""What ``make rehearse`` checks of a deployed stage on moto, and what moto cannot show.

Each check compares what moto recorded with ``infra.deployment`` (the merge template evaluated
for the environment): the same expectation for both deploy paths, less what one path's moto
does not keep (listed in ``NOT_CHECKED``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from infra.deployment import StageDeployment

# What moto does not show, so the rehearsal cannot check it (printed with the summary).
NOT_CHECKED = (
    "IAM, key policies and the API resource policies are not enforced by moto: denials are proven by the "
    "policy evaluator (tests/policy_eval.py); the roles' policies are compared with the generator's",
    "an imported API's resource policy, endpoint type (REGIONAL) and gateway responses in the document: "
    "moto drops them (chalice deploy: the policy file is checked, the gateway responses are put by the "
    "post-deploy step and checked)",
    "the functions' LoggingConfig (JSON logs): moto's Lambda drops it; the post-deploy calls' parameters "
    "are checked, the package path's on the template CloudFormation received",
    "the package path's tracing and tags: moto's CloudFormation ignores Tracing and a function's Tags "
    "(checked on the template it received)",
    "the package path's API stage (access logs, throttling, caching, tracing): moto's CloudFormation has "
    "no AWS::ApiGateway::Stage; checked on the template (tests/integration/test_package.py)",
    "the SAM transform: run locally by aws-sam-translator (CloudFormation runs it on AWS)",
    "metric filters, alarms, the dashboard and API Gateway's account role: moto's CloudFormation creates "
    "none of them; the HMAC keys' KeySpec (moto's CloudFormation makes every key symmetric)",
    "running the functions: moto's Lambda would need Docker; the stages' code runs against the base "
    "stack's resources in tests/integration/test_stacks_rehearsal.py",
)


@dataclass
class Report:
    log: Callable[[str], None] = print
    passed: int = 0
    failed: list[str] = field(default_factory=list)

    def check(self, label: str, ok: bool, detail: object = "") -> bool:
        if ok:
            self.passed += 1
            self.log(f"  ok    {label}")
        else:
            self.failed.append(label)
            self.log(f"  FAIL  {label}: {detail}")
        return ok


def check_functions(report: Report, lambda_: Any, deployment: StageDeployment, *, path: str) -> None:
    """Role, environment, timeout, memory and reserved concurrency of every function; tracing and
    tags where moto keeps them (``chalice deploy``); a stream function's event source mapping."""
    for function in deployment.functions:
        config = lambda_.get_function_configuration(FunctionName=function.name)
        label = f"{path}: {function.name}"
        report.check(f"{label} runs as the base stack's {deployment.stage} role", config["Role"] == deployment.role_arn)
        # moto's CloudFormation passes a Number parameter on as a number (CloudFormation: a string).
        variables = {k: str(v) for k, v in config.get("Environment", {}).get("Variables", {}).items()}
        report.check(f"{label} environment", variables == deployment.variables, _diff(variables, deployment.variables))
        sizes = (config["Timeout"], config["MemorySize"])
        expected = (function.timeout_seconds, function.memory_mb)
        report.check(f"{label} timeout {expected[0]} s, memory {expected[1]} MB", sizes == expected, sizes)
        concurrency = lambda_.get_function_concurrency(FunctionName=function.name).get("ReservedConcurrentExecutions")
        report.check(
            f"{label} reserved concurrency {deployment.reserved_concurrency}",
            concurrency == deployment.reserved_concurrency,
            concurrency,
        )
        if path == "chalice deploy":
            tracing = config.get("TracingConfig", {}).get("Mode")
            report.check(f"{label} tracing Active", tracing == "Active" and deployment.tracing, tracing)
            tags = lambda_.list_tags(Resource=config["FunctionArn"])["Tags"]
            report.check(f"{label} tags {deployment.tags}", deployment.tags.items() <= tags.items(), tags)
        if function.trigger == "stream":
            mappings = lambda_.list_event_source_mappings()["EventSourceMappings"]
            mine = [m for m in mappings if m["FunctionArn"] == config["FunctionArn"]]
            sources = [(m["EventSourceArn"], m["StartingPosition"], m["State"]) for m in mine]
            stream = deployment.variables["PII_VAULT_STREAM_ARN"]
            report.check(
                f"{label} reads the base stack's table stream",
                sources == [(stream, "TRIM_HORIZON", "Enabled")],
                sources,
            )


def rest_api(apigateway: Any, name: str) -> dict[str, Any] | None:
    apis = [api for api in apigateway.get_rest_apis()["items"] if api["name"] == name]
    return apis[0] if len(apis) == 1 else None


def check_api_routes(
    report: Report, apigateway: Any, api: Mapping[str, Any], routes: set[tuple[str, str]], path: str
) -> None:
    resources = apigateway.get_resources(restApiId=api["id"])["items"]
    found = {(method, r["path"]) for r in resources for method in r.get("resourceMethods", {})}
    report.check(
        f"{path}: {api['name']} serves exactly the stage's {len(routes)} routes", found == routes, found ^ routes
    )


def check_api_stage(report: Report, apigateway: Any, api_id: str, deployment: StageDeployment) -> None:
    """The post-deploy step's settings, as moto recorded them (chalice deploy path)."""
    expected = deployment.api
    if expected is None:
        raise ValueError(f"{deployment.stage} has no API")
    label = f"chalice deploy: {expected.name} stage {expected.stage_name}"
    stage = apigateway.get_stage(restApiId=api_id, stageName=expected.stage_name)
    access = stage.get("accessLogSettings") or {}
    wanted = {"destinationArn": expected.access_log["DestinationArn"], "format": expected.access_log["Format"]}
    report.check(f"{label} access logs (JSON, the base stack's group)", access == wanted, access)
    report.check(f"{label} tracing", stage.get("tracingEnabled") is expected.tracing, stage.get("tracingEnabled"))
    report.check(
        f"{label} no cache cluster", stage.get("cacheClusterEnabled") is False, stage.get("cacheClusterEnabled")
    )
    (setting,) = expected.method_settings
    recorded = stage.get("methodSettings", {}).get("*/*", {})
    wanted_settings = {
        "throttlingRateLimit": float(setting["ThrottlingRateLimit"]),
        "throttlingBurstLimit": int(setting["ThrottlingBurstLimit"]),
        "cachingEnabled": setting["CachingEnabled"],
        "dataTraceEnabled": setting["DataTraceEnabled"],
        "metricsEnabled": setting["MetricsEnabled"],
        "loggingLevel": setting["LoggingLevel"],
    }
    got = {k: recorded.get(k) for k in wanted_settings}
    report.check(f"{label} throttling, no caching, no data trace", got == wanted_settings, got)
    responses = {
        r["responseType"]: {k: r[k] for k in ("statusCode", "responseParameters", "responseTemplates") if k in r}
        for r in apigateway.get_gateway_responses(restApiId=api_id)["items"]
    }
    report.check(
        f"{label} gateway responses",
        responses == expected.gateway_responses,
        _diff(responses, expected.gateway_responses),
    )


def check_logging_calls(report: Report, calls: list[tuple[str, dict[str, Any]]], deployment: StageDeployment) -> None:
    """moto drops LoggingConfig: the post-deploy step's calls carried it, for every function."""
    for function in deployment.functions:
        sent = [
            p.get("LoggingConfig")
            for op, p in calls
            if op == "UpdateFunctionConfiguration" and p.get("FunctionName") == function.name
        ]
        report.check(
            f"chalice deploy: {function.name} JSON logs into {function.log_group} (post-deploy call)",
            bool(sent) and all(s == function.logging_config for s in sent),
            sent,
        )


def _diff(got: Mapping[str, Any], wanted: Mapping[str, Any]) -> str:
    keys = sorted(k for k in set(got) | set(wanted) if got.get(k) != wanted.get(k))
    return json.dumps({k: {"got": got.get(k), "wanted": wanted.get(k)} for k in keys}, default=str)[:2000]
