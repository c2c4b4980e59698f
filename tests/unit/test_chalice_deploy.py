"""The chalice deploy path, offline: the configs generated from the registry, each stage's merge
template evaluated for one environment (what the project config and the post-deploy step apply),
and the post-deploy step's translation of it into API calls."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from chalicelib.stages import API_STAGE_NAMES, STAGE_NAMES, STAGES, stage
from infra import deployment as deployment_module
from infra.cfn import Template, TemplateError
from infra.chalice_config import ROLE_STAND_IN, STREAM_STAND_IN, environment_config, render, tracked_config
from infra.deployment import stage_deployment
from infra.environment import resolve
from infra.iam.callers import api_resource_policy
from infra.merge import merge_template
from infra.observability import function_id
from infra.params import stage_parameter_values
from infra.postdeploy import event_source_settings, stage_operations
from infra.resolve import Context, resolve_template
from tests.base_outputs import base_outputs, example_params, params_dir

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
ENV = "t"


@pytest.fixture
def params(tmp_path: Path) -> Path:
    return params_dir(tmp_path, ENV)


def test_given_the_registry_then_the_tracked_chalice_config_is_generated_from_it() -> None:
    """`python -m infra chalice-config --check` in a test: a stage added to the registry, or a
    timeout changed, is in .chalice/config.json (chalice package and chalice local read it)."""
    assert (ROOT / ".chalice" / "config.json").read_text(encoding="utf-8") == render(tracked_config())


def test_given_the_tracked_chalice_config_then_it_holds_every_stage_and_no_account_or_environment() -> None:
    config = tracked_config()
    text = render(config)

    assert set(config["stages"]) == set(STAGE_NAMES)
    assert not re.search(r"(^|[^0-9])[0-9]{12}([^0-9]|$)", text)  # no account id
    for entry in STAGES:
        section = config["stages"][entry.name]
        assert (section["manage_iam_role"], section["iam_role_arn"]) == (False, ROLE_STAND_IN)
        assert ("api_gateway_stage" in section) is (entry.kind == "api")
        # The role variable and the stream's stand-in only: every other value is the deploy's or the local stack's.
        assert set(section["environment_variables"].values()) <= {entry.name, STREAM_STAND_IN}
        for function in entry.functions:
            sizes = section["lambda_functions"][function.name]
            assert (sizes["lambda_timeout"], sizes["lambda_memory_size"]) == (
                function.timeout_seconds,
                function.memory_mb,
            )


@pytest.mark.parametrize("name", STAGE_NAMES)
def test_given_an_environment_then_the_project_stage_sets_what_the_merge_template_sets(name: str, params: Path) -> None:
    outputs = base_outputs(ENV)
    deployed = stage_deployment(name, ENV, outputs, params)
    section = environment_config([deployed])["stages"][f"{ENV}-{name}"]
    values = stage_parameter_values(ENV, name, params)

    assert section["manage_iam_role"] is False
    assert section["iam_role_arn"] == outputs[f"{name.capitalize()}RoleArn"]
    # The one source of the merge templates' environment, resolved for the environment.
    assert section["environment_variables"] == resolve(stage(name), outputs, values)
    assert section["reserved_concurrency"] == example_params()[name]["ReservedConcurrency"]
    assert section["xray"] is True
    assert section["tags"] == {"app": "pii-vault", "environment": ENV}
    assert "log_retention_in_days" not in json.dumps(section)  # the base stack owns the log groups
    for function in stage(name).functions:
        sizes = section["lambda_functions"][function.name]
        assert (sizes["lambda_timeout"], sizes["lambda_memory_size"]) == (function.timeout_seconds, function.memory_mb)
    if name in API_STAGE_NAMES:
        assert deployed.api is not None
        assert section["api_gateway_policy_file"] == f"api-policy-{ENV}-{name}.json"
        assert deployed.api.resource_policy == api_resource_policy(name, values["AllowedCallers"])
        assert deployed.api.name == f"pii-vault-{ENV}-{name}"  # what the alarms and the dashboard look for
    else:
        assert "api_gateway_policy_file" not in section and deployed.api is None


@pytest.mark.parametrize("name", STAGE_NAMES)
def test_given_a_stage_then_its_evaluated_merge_template_environment_is_infra_environment_s(
    name: str, params: Path
) -> None:
    """Two evaluations of one source: the merge template's rendering of infra.environment,
    evaluated as CloudFormation would, and infra.environment.resolve."""
    outputs = base_outputs(ENV)
    context, values = deployment_module.stage_context(name, ENV, outputs, params)
    resources = resolve_template(merge_template(name).render(), context)

    for function in stage(name).functions:
        variables = resources[function_id(function)]["Properties"]["Environment"]["Variables"]
        assert variables == resolve(stage(name), outputs, values)


def test_given_a_merge_template_setting_the_chalice_path_does_not_apply_then_the_deployment_refuses(
    params: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def with_extra(name: str) -> Template:
        template = merge_template(name)
        template.resources["APIHandler"].properties["EphemeralStorage"] = {"Size": 1024}
        return template

    monkeypatch.setattr(deployment_module, "merge_template", with_extra)

    with pytest.raises(TemplateError, match="EphemeralStorage"):
        stage_deployment("writer", ENV, base_outputs(ENV), params)


def test_given_an_api_stage_then_the_post_deploy_sets_its_stage_as_the_merge_template_does(params: Path) -> None:
    api = stage_deployment("reader", ENV, base_outputs(ENV), params).api
    assert api is not None

    operations = {o["path"]: o["value"] for o in stage_operations(api)}

    assert all(o["op"] == "replace" for o in stage_operations(api))
    assert operations == {
        "/tracingEnabled": "true",
        "/cacheClusterEnabled": "false",
        "/accessLogSettings/destinationArn": base_outputs(ENV)["ReaderAccessLogGroupArn"],
        "/accessLogSettings/format": api.access_log["Format"],
        "/*/*/caching/enabled": "false",
        "/*/*/metrics/enabled": "true",
        "/*/*/logging/dataTrace": "false",  # would log request and response bodies
        "/*/*/logging/loglevel": "OFF",
        "/*/*/throttling/rateLimit": str(example_params()["reader"]["ThrottlingRateLimit"]),
        "/*/*/throttling/burstLimit": str(example_params()["reader"]["ThrottlingBurstLimit"]),
    }
    assert json.loads(api.access_log["Format"])["status"] == "$context.status"
    # A setting the step cannot translate fails loudly instead of being skipped.
    odd = dataclasses.replace(api, method_settings=({"ResourcePath": "/*", "HttpMethod": "*", "Unknown": 1},))
    with pytest.raises(TemplateError, match="Unknown"):
        stage_operations(odd)


def test_given_stream_event_settings_then_the_post_deploy_passes_them_to_the_mapping() -> None:
    destination = "arn:aws:sqs:us-east-1:111122223333:pii-vault-t-stream-failures"
    event = {
        "MaximumRetryAttempts": 3,
        "BisectBatchOnFunctionError": True,
        "DestinationConfig": {"OnFailure": {"Destination": destination, "Type": "SQS"}},
    }

    assert event_source_settings(event) == {
        "MaximumRetryAttempts": 3,
        "BisectBatchOnFunctionError": True,
        "DestinationConfig": {"OnFailure": {"Destination": destination}},
    }
    with pytest.raises(TemplateError, match="StartingPosition"):  # fixed when the mapping is created
        event_source_settings({"StartingPosition": "LATEST"})


def test_given_the_intrinsics_of_the_stage_templates_then_the_resolver_evaluates_them_as_cloudformation() -> None:
    context = Context("t", {"Callers": ["a", "b"], "Empty": [], "N": "5"}, {"KeyArn": "arn:k"}, {"AWS::Region": "r"})
    template = {
        "Conditions": {"HasCallers": {"Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "Empty"}]}, ""]}]}},
        "Resources": {
            "R": {
                "Properties": {
                    "Key": {"Fn::ImportValue": {"Fn::Sub": "pii-vault-${Environment}-KeyArn"}},
                    "Text": {"Fn::Sub": "${AWS::Region}-${N}-${!aws:username}"},
                    "List": {"Fn::Join": [",", {"Ref": "Callers"}]},
                    "Gone": {"Fn::If": ["HasCallers", "x", {"Ref": "AWS::NoValue"}]},
                }
            },
            "Skipped": {"Condition": "HasCallers", "Properties": {}},
        },
    }
    context = dataclasses.replace(context, parameters={**context.parameters, "Environment": "t"})

    resolved = resolve_template(template, context)

    assert resolved == {"R": {"Properties": {"Key": "arn:k", "Text": "r-5-${aws:username}", "List": "a,b"}}}
    with pytest.raises(TemplateError, match="Fn::GetAtt"):
        resolve_template({"Resources": {"R": {"Properties": {"A": {"Fn::GetAtt": ["X", "Arn"]}}}}}, context)
    with pytest.raises(TemplateError, match="not an output"):
        resolve_template({"Resources": {"R": {"Properties": {"A": {"Fn::ImportValue": "other-KeyArn"}}}}}, context)
