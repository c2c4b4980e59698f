"""The chalice deploy path's own steps on moto, in process: the generated project, the guards
between the two deploy paths, and the post-deploy step (what moto records of it, and the
parameters of what it drops). ``make rehearse`` runs the whole path with Chalice itself."""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.stages import STAGE_NAMES, STAGES
from infra import postdeploy
from infra.__main__ import main as infra_main
from infra.chalice_project import write_project
from infra.deployment import StageDeployment, stage_deployment
from infra.guards import GuardError, refuse_chalice_deploy, refuse_package_deploy
from infra.roles import role_id
from infra.specs import STREAM_OUTPUT
from tests.base_outputs import base_outputs, params_dir

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore:Tried to parse:UserWarning")]

ENV = "t"
REGION = "us-east-1"
EMPTY_STACK = json.dumps({"Resources": {"Nothing": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}})


@dataclasses.dataclass
class Env:
    outputs: dict[str, str]
    params: Path
    project: Path
    calls: list[tuple[str, dict[str, Any]]]

    def client(self, service: str) -> Any:
        client = boto3.client(service, region_name=REGION)
        client.meta.events.register("before-parameter-build.*.*", self._record)
        return client

    def _record(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.calls.append((model.name, dict(params)))

    def deployment(self, stage: str) -> StageDeployment:
        return stage_deployment(stage, ENV, self.outputs, self.params)


@pytest.fixture
def env(aws_env: None, tmp_path: Path) -> Iterator[Env]:
    with mock_aws():
        iam, ddb = boto3.client("iam", region_name=REGION), boto3.client("dynamodb", region_name=REGION)
        roles = {
            f"{role_id(s.name)}Arn": iam.create_role(RoleName=f"r-{s.name}", AssumeRolePolicyDocument="{}")["Role"][
                "Arn"
            ]
            for s in STAGES
        }
        table = ddb.create_table(
            TableName=f"pii-vault-{ENV}",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"},
        )["TableDescription"]
        outputs = base_outputs(ENV, **roles, **{STREAM_OUTPUT: table["LatestStreamArn"]})
        yield Env(outputs, params_dir(tmp_path, ENV), tmp_path / "deploy" / ENV, [])


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "app = None\n")
    return buffer.getvalue()


def chalice_deployed(env: Env, stage: str, chalice_stage: str | None = None) -> StageDeployment:
    """What ``chalice deploy --stage <env>-<stage>`` leaves: its functions (tagged as Chalice tags
    them), a stream function's mapping, an API stage's REST API named after the app, and the
    project's record of it."""
    deployment = env.deployment(stage)
    lambda_ = boto3.client("lambda", region_name=REGION)
    tag = f"version=1.34.0:stage={chalice_stage or f'{ENV}-{stage}'}:app=pii-vault"
    for function in deployment.functions:
        lambda_.create_function(
            FunctionName=function.name,
            Runtime="python3.11",
            Role=deployment.role_arn,
            Handler=f"app.{function.handler}",
            Code={"ZipFile": _zip()},
            Tags={"aws-chalice": tag},
        )
        if function.trigger == "stream":
            lambda_.create_event_source_mapping(
                EventSourceArn=env.outputs[STREAM_OUTPUT], FunctionName=function.name, StartingPosition="TRIM_HORIZON"
            )
    resources: list[dict[str, Any]] = []
    if deployment.api is not None:
        apigateway = boto3.client("apigateway", region_name=REGION)
        api = apigateway.create_rest_api(name="pii-vault")
        root = apigateway.get_resources(restApiId=api["id"])["items"][0]["id"]
        apigateway.put_method(restApiId=api["id"], resourceId=root, httpMethod="GET", authorizationType="AWS_IAM")
        apigateway.put_integration(restApiId=api["id"], resourceId=root, httpMethod="GET", type="MOCK")
        apigateway.create_deployment(restApiId=api["id"], stageName=deployment.api.stage_name)
        resources.append({"name": "rest_api", "resource_type": "rest_api", "rest_api_id": api["id"]})
    record = env.project / ".chalice" / "deployed" / f"{ENV}-{stage}.json"
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"resources": resources, "schema_version": "2.0"}), encoding="utf-8")
    return deployment


def _api_state(apigateway: Any, api_id: str) -> dict[str, Any]:
    stage = apigateway.get_stage(restApiId=api_id, stageName="api")
    return {
        "name": apigateway.get_rest_api(restApiId=api_id)["name"],
        "stage": {
            k: stage.get(k) for k in ("methodSettings", "accessLogSettings", "tracingEnabled", "cacheClusterEnabled")
        },
        "responses": sorted(
            apigateway.get_gateway_responses(restApiId=api_id)["items"], key=lambda r: r["responseType"]
        ),
    }


def test_given_a_chalice_deployed_api_stage_when_post_deploy_runs_twice_then_it_holds_the_merge_template_settings(
    env: Env,
) -> None:
    deployment = chalice_deployed(env, "writer")
    assert deployment.api is not None
    apigateway, lambda_ = env.client("apigateway"), env.client("lambda")
    clients = postdeploy.Clients(lambda_, apigateway)
    api_id = postdeploy.deployed_rest_api(env.project, f"{ENV}-writer")

    postdeploy.apply(deployment, clients, env.project, log=lambda _: None)
    first = _api_state(apigateway, api_id)
    postdeploy.apply(deployment, clients, env.project, log=lambda _: None)

    assert _api_state(apigateway, api_id) == first  # idempotent
    assert first["name"] == f"pii-vault-{ENV}-writer"  # not chalice's "pii-vault": the alarms' ApiName
    settings = first["stage"]["methodSettings"]["*/*"]
    assert (settings["throttlingRateLimit"], settings["throttlingBurstLimit"]) == (10.0, 20)  # example.json
    assert settings["dataTraceEnabled"] is False and settings["cachingEnabled"] is False
    assert settings["metricsEnabled"] is True and settings["loggingLevel"] == "OFF"
    assert first["stage"]["accessLogSettings"]["destinationArn"] == env.outputs["WriterAccessLogGroupArn"]
    assert json.loads(first["stage"]["accessLogSettings"]["format"])["requestId"] == "$context.requestId"
    assert first["stage"]["tracingEnabled"] is True and first["stage"]["cacheClusterEnabled"] is False
    answers = {r["responseType"]: r for r in first["responses"]}
    assert answers.keys() == deployment.api.gateway_responses.keys()
    assert answers["ACCESS_DENIED"]["statusCode"] == answers["MISSING_AUTHENTICATION_TOKEN"]["statusCode"] == "404"
    # moto keeps no LoggingConfig: the calls carried it, JSON into the base stack's group.
    (function,) = deployment.functions
    sent = [p["LoggingConfig"] for op, p in env.calls if op == "UpdateFunctionConfiguration"]
    assert sent == [function.logging_config] * 2
    assert function.logging_config == {
        "LogFormat": "JSON",
        "LogGroup": f"/aws/lambda/pii-vault-{ENV}-writer",
        "ApplicationLogLevel": "INFO",
        "SystemLogLevel": "WARN",
    }
    # Gateway responses are published by a deployment of the API, after they are put.
    operations = [op for op, _ in env.calls if op in ("PutGatewayResponse", "CreateDeployment", "UpdateStage")]
    assert operations[: len(answers) + 2] == ["PutGatewayResponse"] * len(answers) + ["CreateDeployment", "UpdateStage"]


def test_given_the_indexer_when_post_deploy_runs_then_its_mapping_gets_the_template_s_stream_settings(env: Env) -> None:
    deployment = chalice_deployed(env, "indexer")
    destination = "arn:aws:sqs:us-east-1:111122223333:pii-vault-t-stream-failures"
    stream = next(f for f in deployment.functions if f.trigger == "stream")
    extra: dict[str, Any] = {"MaximumRetryAttempts": 3, "BisectBatchOnFunctionError": True}
    extra["DestinationConfig"] = {"OnFailure": {"Destination": destination, "Type": "SQS"}}
    functions = tuple(dataclasses.replace(f, event_source=extra) if f is stream else f for f in deployment.functions)
    deployment = dataclasses.replace(deployment, functions=functions)

    postdeploy.apply(deployment, postdeploy.Clients(env.client("lambda"), env.client("apigateway")), env.project)

    (mapping,) = boto3.client("lambda", region_name=REGION).list_event_source_mappings()["EventSourceMappings"]
    assert (mapping["MaximumRetryAttempts"], mapping["BisectBatchOnFunctionError"]) == (3, True)
    assert mapping["DestinationConfig"] == {"OnFailure": {"Destination": destination}}
    logged = {p["FunctionName"] for op, p in env.calls if op == "UpdateFunctionConfiguration"}
    assert logged == {f.name for f in deployment.functions}


def test_given_stage_stacks_then_chalice_deploy_is_refused_and_given_chalice_functions_then_the_package_path(
    env: Env,
) -> None:
    cfn, lambda_ = boto3.client("cloudformation", region_name=REGION), boto3.client("lambda", region_name=REGION)
    refuse_chalice_deploy(cfn, lambda_, ENV)  # nothing deployed: both paths open
    refuse_package_deploy(lambda_, ENV)

    cfn.create_stack(StackName=f"pii-vault-{ENV}-reader", TemplateBody=EMPTY_STACK)
    with pytest.raises(GuardError, match=f"pii-vault-{ENV}-reader"):
        refuse_chalice_deploy(cfn, lambda_, ENV)
    # The post-deploy command refuses too (it would act on CloudFormation's resources).
    assert infra_main(["post-deploy", "--env", ENV, "--stage", "reader", "--params-dir", str(env.params)]) == 1
    cfn.delete_stack(StackName=f"pii-vault-{ENV}-reader")
    refuse_chalice_deploy(cfn, lambda_, ENV)

    chalice_deployed(env, "offboard", chalice_stage="offboard")  # a packaged function: the checkout's stage name
    refuse_package_deploy(lambda_, ENV)
    chalice_deployed(env, "rewrap")  # chalice deploy of the project: stage t-rewrap
    with pytest.raises(GuardError, match=f"pii-vault-{ENV}-rewrap-rewrap"):
        refuse_package_deploy(lambda_, ENV)


def test_given_the_base_outputs_then_the_project_links_the_code_and_keeps_chalice_s_records(
    env: Env, tmp_path: Path
) -> None:
    project = write_project(ENV, env.outputs, out=tmp_path / "deploy", params_dir=env.params)
    record = project / ".chalice" / "deployed" / f"{ENV}-writer.json"
    record.parent.mkdir()
    record.write_text("{}", encoding="utf-8")

    again = write_project(ENV, env.outputs, out=tmp_path / "deploy", params_dir=env.params)

    assert again == project and record.read_text(encoding="utf-8") == "{}"
    root = Path(__file__).resolve().parents[2]
    for name in ("app.py", "chalicelib", "requirements.txt"):
        assert (project / name).is_symlink() and (project / name).resolve() == (root / name).resolve()
    config = json.loads((project / ".chalice" / "config.json").read_text(encoding="utf-8"))
    assert set(config["stages"]) == {f"{ENV}-{name}" for name in STAGE_NAMES}
    writer = env.deployment("writer")
    policy = json.loads((project / ".chalice" / f"api-policy-{ENV}-writer.json").read_text(encoding="utf-8"))
    assert writer.api is not None and policy == writer.api.resource_policy
