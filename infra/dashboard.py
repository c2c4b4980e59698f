"""The CloudWatch dashboard of one environment: per API stage, requests, errors, latency,
integrity/KMS/storage errors and throttles; then KMS calls and the key-cache hit rate."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.stages import API_STAGES
from infra.arns import function_name
from infra.cfn import ENV_PREFIX, Resource, Template, environment_name, sub
from infra.observability import API_STAGE_NAME, NAMESPACE


def _widget(
    title: str, metrics: list[list[Any]], *, stat: str = "Sum", x: int = 0, y: int = 0, width: int = 12
) -> dict[str, Any]:
    properties = {
        "title": title,
        "region": "${AWS::Region}",
        "stat": stat,
        "period": 300,
        "view": "timeSeries",
        "metrics": metrics,
    }
    return {"type": "metric", "x": x, "y": y, "width": width, "height": 6, "properties": properties}


def _api_name(stage_name: str) -> str:
    return function_name(stage_name, "api_handler", ENV_PREFIX)


def dashboard_body() -> str:
    """The dashboard as a ``Fn::Sub`` string (region and environment substituted)."""
    widgets: list[dict[str, Any]] = []
    y = 0
    for stage in API_STAGES:
        title, name = stage.name.capitalize(), _api_name(stage.name)
        api = ["AWS/ApiGateway", "Count", "ApiName", name, "Stage", API_STAGE_NAME]
        widgets.append(
            _widget(
                f"{stage.name}: requests and errors",
                [api, [".", "4XXError", ".", ".", ".", "."], [".", "5XXError", ".", ".", ".", "."]],
                y=y,
            )
        )
        latency = [*api[:1], "Latency", *api[2:]]
        widgets.append(
            _widget(
                f"{stage.name}: latency p50 / p90 / p99 (ms)",
                [[*latency, {"stat": "p50"}], ["...", {"stat": "p90"}], ["...", {"stat": "p99"}]],
                stat="p50",
                x=12,
                y=y,
            )
        )
        y += 6
        errors = [[NAMESPACE, f"{title}IntegrityErrors"], [".", f"{title}KmsErrors"], [".", f"{title}StorageErrors"]]
        if stage.name == "reader":
            errors.append([".", "ReaderFleetIntegrityErrors"])
        widgets.append(_widget(f"{stage.name}: integrity, KMS and storage errors", errors, y=y))
        widgets.append(
            _widget(
                f"{stage.name}: throttles and concurrency",
                [
                    ["AWS/Lambda", "Throttles", "FunctionName", name],
                    [".", "ConcurrentExecutions", ".", ".", {"stat": "Maximum"}],
                    [NAMESPACE, f"{title}ApiThrottled"],
                ],
                x=12,
                y=y,
            )
        )
        y += 6

    # KMS calls come from the account's API usage metrics (per operation, all keys of the
    # account and region). Key-cache hit rate ~ 1 - KMS calls / requests of the stage.
    def kms(operation: str, **options: Any) -> list[Any]:
        return [
            "AWS/Usage",
            "CallCount",
            "Type",
            "API",
            "Resource",
            operation,
            "Service",
            "KMS",
            "Class",
            "None",
            options,
        ]

    def requests(stage_name: str, **options: Any) -> list[Any]:
        return ["AWS/ApiGateway", "Count", "ApiName", _api_name(stage_name), "Stage", API_STAGE_NAME, options]

    widgets.append(
        _widget(
            "KMS calls (Encrypt = writer, Decrypt = reader)", [kms("Encrypt", id="enc"), kms("Decrypt", id="dec")], y=y
        )
    )
    widgets.append(
        _widget(
            "Key-cache hit rate (1 - KMS calls / requests)",
            [
                [{"expression": "100 * (1 - enc / MAX([wreq, 1]))", "label": "writer hit %", "id": "whit"}],
                [{"expression": "100 * (1 - dec / MAX([rreq, 1]))", "label": "reader hit %", "id": "rhit"}],
                kms("Encrypt", id="enc", visible=False),
                kms("Decrypt", id="dec", visible=False),
                requests("writer", id="wreq", visible=False),
                requests("reader", id="rreq", visible=False),
            ],
            x=12,
            y=y,
        )
    )
    return json.dumps({"widgets": widgets}, separators=(",", ":"))


def add_dashboard(template: Template) -> None:
    template.add(
        "Dashboard",
        Resource(
            "AWS::CloudWatch::Dashboard", {"DashboardName": environment_name(), "DashboardBody": sub(dashboard_body())}
        ),
    )
