"""The base stack's logs, metric filters and alarms (the dashboard: ``infra.dashboard``).

Every function logs JSON (the merge templates set ``LogFormat: JSON``) into a group this
stack creates, with the retention parameter; API stages also get an access log group. The
metric filters count the log lines the code writes for incidents; the alarms watch them and
the AWS metrics (5xx share, throttles, errors, stream lag).
"""

from __future__ import annotations

from typing import Any

from chalice.utils import to_cfn_resource_name

from chalicelib.stages import API_STAGES, JOB_STAGES, Function, Stage
from infra.arns import function_name
from infra.cfn import APP, ENV_PREFIX, Json, Resource, Template, getatt, ref, sub
from infra.specs import FAILURE_QUEUE

API_STAGE_NAME = "api"  # .chalice/config.json api_gateway_stage
NAMESPACE = f"{APP}/${{Environment}}"
# The log lines the metric filters count. chalicelib.api.http logs "request failed: <code>"
# at ERROR for every integrity and dependency error (a dependency error's line goes on with
# its cause category: "request failed: storage_error (cause: throttled)"); with the Lambda
# JSON log format the line is {"level": "ERROR", "message": "request failed: integrity_error", ...}.
ERROR_CODES = {"IntegrityErrors": "integrity_error", "KmsErrors": "kms_error", "StorageErrors": "storage_error"}
# chalicelib.keys.fleet logs "fleet key table entry ...: integrity_error; asking KMS" at ERROR for an
# entry that is malformed, impossible or fails authentication: someone else wrote the table.
# The read itself succeeds (KMS answers), so no "request failed" line counts it.
FLEET_INTEGRITY_MESSAGE = "fleet key table *integrity_error*"
# The indexer logs a stored person that fails authentication at WARNING ("... does not open;
# beacon left as is", chalicelib/service/indexer.py) and carries on: the line is the only signal.
INDEXER_INTEGRITY_MESSAGE = "indexer: person * does not open*"
# The indexer logs each stream record it skips because it cannot process it at ERROR ("indexer:
# stream record skipped (<code>): ...", chalicelib/service/indexer.py SKIPPED_MESSAGE) and goes on.
INDEXER_SKIPPED_MESSAGE = "indexer: stream record skipped*"
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


def error_filter_pattern(code: str) -> str:
    """CloudWatch filter pattern for the JSON log line of one error code."""
    return f'{{ ($.level = "ERROR") && ($.message = "request failed: {code}*") }}'


def fleet_integrity_filter_pattern() -> str:
    """CloudWatch filter pattern for the reader's fleet-table integrity lines (chalicelib.keys.fleet)."""
    return f'{{ ($.level = "ERROR") && ($.message = "{FLEET_INTEGRITY_MESSAGE}") }}'


def indexer_integrity_filter_pattern() -> str:
    """CloudWatch filter pattern for the indexer's "does not open" lines (chalicelib.service.indexer)."""
    return f'{{ ($.level = "WARNING") && ($.message = "{INDEXER_INTEGRITY_MESSAGE}") }}'


def indexer_skipped_filter_pattern() -> str:
    """CloudWatch filter pattern for the indexer's skipped stream records (chalicelib.service.indexer)."""
    return f'{{ ($.level = "ERROR") && ($.message = "{INDEXER_SKIPPED_MESSAGE}") }}'


def function_id(function: Function) -> str:
    """The logical id chalice package gives a function (``index_beacons`` -> ``IndexBeacons``;
    an API stage's one function is ``APIHandler``), so merge templates land on its resources."""
    return "APIHandler" if function.trigger == "http" else str(to_cfn_resource_name(function.name))


def log_group(name: str) -> Resource:
    return Resource("AWS::Logs::LogGroup", {"LogGroupName": sub(name), "RetentionInDays": ref("LogRetentionDays")})


def metric_filter(group: str, pattern: str, metric: str) -> Resource:
    """Counts matching lines of the log group ``group`` (a logical id) as ``metric``, 0 otherwise."""
    transformation = {"MetricNamespace": sub(NAMESPACE), "MetricName": metric, "MetricValue": "1", "DefaultValue": 0}
    return Resource(
        "AWS::Logs::MetricFilter",
        {"LogGroupName": ref(group), "FilterPattern": pattern, "MetricTransformations": [transformation]},
    )


def alarm(description: str, metric: dict[str, Any], threshold: Json, *, period: int = 300) -> Resource:
    """At or above ``threshold`` within one period; notifies the alarm topic (if any) both ways."""
    actions = {"Fn::If": ["HasAlarmTopic", [ref("AlarmTopicArn")], ref("AWS::NoValue")]}
    return Resource(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmDescription": sub(f"{APP} ${{Environment}} {description}"),
            **metric,
            "Period": period,
            "EvaluationPeriods": 1,
            "Threshold": threshold,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": actions,
            "OKActions": actions,
        },
    )


def custom(metric: str) -> dict[str, Any]:
    return {"Namespace": sub(NAMESPACE), "MetricName": metric, "Statistic": "Sum"}


def aws_metric(namespace: str, metric: str, statistic: str, dimensions: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Namespace": namespace, "MetricName": metric, "Statistic": statistic, "Dimensions": dimensions}


def _api_stage(template: Template, stage: Stage) -> None:
    title, name = stage.name.capitalize(), function_name(stage.name, stage.functions[0].name, ENV_PREFIX)
    template.add(f"{title}LogGroup", log_group(f"/aws/lambda/{name}"))
    template.add(f"{title}AccessLogGroup", log_group(f"/aws/apigateway/{name}-access"))
    for metric, code in ERROR_CODES.items():
        template.add(
            f"{title}{metric}Filter", metric_filter(f"{title}LogGroup", error_filter_pattern(code), title + metric)
        )
    template.add(
        f"{title}ApiThrottledFilter",
        metric_filter(f"{title}AccessLogGroup", '{ $.status = "429" }', f"{title}ApiThrottled"),
    )
    lambda_dims = [{"Name": "FunctionName", "Value": sub(name)}]
    api_dims: list[dict[str, Any]] = [
        {"Name": "ApiName", "Value": sub(name)},
        {"Name": "Stage", "Value": API_STAGE_NAME},
    ]
    alarms = {
        "IntegrityErrorsAlarm": alarm(
            f"{stage.name}: a stored record failed authentication (any is an incident)",
            custom(f"{title}IntegrityErrors"),
            1,
            period=60,
        ),
        "KmsErrorsAlarm": alarm(
            f"{stage.name}: KMS calls failing (502 kms_error)", custom(f"{title}KmsErrors"), ref("KmsErrorsThreshold")
        ),
        "Api5xxRateAlarm": alarm(
            f"{stage.name}: share of 5xx answers over 5 minutes",
            aws_metric("AWS/ApiGateway", "5XXError", "Average", api_dims),
            ref("FiveXxRateThreshold"),
        ),
        "LambdaThrottlesAlarm": alarm(
            f"{stage.name}: invocations throttled at the reserved concurrency",
            aws_metric("AWS/Lambda", "Throttles", "Sum", lambda_dims),
            1,
        ),
        "ApiThrottledAlarm": alarm(
            f"{stage.name}: requests refused with 429 by API Gateway throttling",
            custom(f"{title}ApiThrottled"),
            ref("ApiThrottledThreshold"),
        ),
    }
    for suffix, resource in alarms.items():
        template.add(f"{title}{suffix}", resource)
    template.output(f"{title}AccessLogGroupArn", getatt(f"{title}AccessLogGroup"))


def _job_stage(template: Template, stage: Stage) -> None:
    title = stage.name.capitalize()
    for function in stage.functions:
        prefix = f"{title}{function_id(function)}"  # IndexerIndexBeacons, IndexerBackfill, OffboardOffboard
        deployed = function_name(stage.name, function.name, ENV_PREFIX)
        dims = [{"Name": "FunctionName", "Value": sub(deployed)}]
        template.add(f"{prefix}LogGroup", log_group(f"/aws/lambda/{deployed}"))
        template.add(
            f"{prefix}ErrorsAlarm",
            alarm(
                f"{stage.name}-{function.name}: invocations failed (a stream batch is retried and holds "
                "its shard; a job segment reports the error to its caller)",
                aws_metric("AWS/Lambda", "Errors", "Sum", dims),
                1,
            ),
        )
        template.add(
            f"{prefix}ThrottlesAlarm",
            alarm(
                f"{stage.name}-{function.name}: invocations throttled at the reserved concurrency",
                aws_metric("AWS/Lambda", "Throttles", "Sum", dims),
                1,
            ),
        )
        if function.trigger == "stream":
            # How far the stream's reader is behind the table (search misses writes younger than this).
            template.add(
                f"{title}IteratorAgeAlarm",
                alarm(
                    f"{stage.name}: the table's stream is read late (search lags behind writes)",
                    {**aws_metric("AWS/Lambda", "IteratorAge", "Maximum", dims), "Unit": "Milliseconds"},
                    ref("IndexerIteratorAgeThresholdMs"),
                ),
            )


def _stage_signals(template: Template) -> None:
    """The incidents one stage's code alone logs: the reader's forged fleet-table entries, the
    indexer's people that do not open (either of its functions)."""
    template.add(
        "ReaderFleetIntegrityErrorsFilter",
        metric_filter("ReaderLogGroup", fleet_integrity_filter_pattern(), "ReaderFleetIntegrityErrors"),
    )
    template.add(
        "ReaderFleetIntegrityErrorsAlarm",
        alarm(
            "reader: a fleet key table entry failed its checks (someone other than the reader wrote the table; "
            "reads fell back to KMS)",
            custom("ReaderFleetIntegrityErrors"),
            1,
            period=60,
        ),
    )
    (indexer,) = (stage for stage in JOB_STAGES if stage.name == "indexer")
    for function in indexer.functions:
        prefix = f"Indexer{function_id(function)}"
        template.add(
            f"{prefix}IntegrityFilter",
            metric_filter(f"{prefix}LogGroup", indexer_integrity_filter_pattern(), "IndexerIntegrityErrors"),
        )
    template.add(
        "IndexerIntegrityErrorsAlarm",
        alarm(
            "indexer: a stored person failed authentication while indexing (any is an incident)",
            custom("IndexerIntegrityErrors"),
            1,
            period=60,
        ),
    )
    stream = next(f for f in indexer.functions if f.trigger == "stream")
    template.add(
        "IndexerSkippedRecordsFilter",
        metric_filter(
            f"Indexer{function_id(stream)}LogGroup", indexer_skipped_filter_pattern(), "IndexerSkippedRecords"
        ),
    )
    template.add(
        "IndexerSkippedRecordsAlarm",
        alarm(
            "indexer: a stream record could not be processed and was skipped (its person is not indexed; "
            "see the log line for the cause, then run the backfill)",
            custom("IndexerSkippedRecords"),
            1,
            period=60,
        ),
    )
    template.add(
        "IndexerFailureQueueAlarm",
        alarm(
            "indexer: a stream batch failed every retry and was parked in the failure queue (its records "
            "are not indexed; run the backfill once the cause is fixed)",
            aws_metric(
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                "Maximum",
                [{"Name": "QueueName", "Value": getatt(FAILURE_QUEUE.logical_id, "QueueName")}],
            ),
            1,
        ),
    )


def add_observability(template: Template) -> None:
    for stage in API_STAGES:
        _api_stage(template, stage)
    for stage in JOB_STAGES:
        _job_stage(template, stage)
    _stage_signals(template)
    # API Gateway's account-wide CloudWatch role: access logs need it once per account and region.
    template.add(
        "ApiGatewayCloudWatchRole",
        Resource(
            "AWS::IAM::Role",
            {
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
            condition="ManageApiGatewayAccount",
        ),
    )
    template.add(
        "ApiGatewayAccount",
        Resource(
            "AWS::ApiGateway::Account",
            {"CloudWatchRoleArn": getatt("ApiGatewayCloudWatchRole")},
            condition="ManageApiGatewayAccount",
        ),
    )
