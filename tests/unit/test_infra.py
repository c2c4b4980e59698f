"""The infrastructure package's own promises (infra/): a template refuses a logical id twice,
every stage of the registry has its grants, its environment and its parameters, and a
function's deployed environment is exactly the settings its stage reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chalicelib.stages import STAGES, stage
from chalicelib.support.environment import ROLE_VARIABLE, LocalOnly, Tunable
from infra.cfn import Resource, Template, TemplateError
from infra.environment import resolve, stage_values, tunable_parameter, variables
from infra.iam import STAGE_GRANTS
from infra.merge import merge_template
from infra.params import load_params, stage_parameter_values, stage_parameters
from infra.specs import KEYS, STREAM_OUTPUT, TABLES, KeySpec, TableSpec

pytestmark = pytest.mark.unit

STAGE_NAMES = [s.name for s in STAGES]
SPECS: list[TableSpec | KeySpec] = [*TABLES.values(), *KEYS.values()]  # every table and key


def test_given_a_logical_id_added_twice_then_the_template_refuses_it() -> None:
    template = Template("t")
    template.add("Table", Resource("AWS::DynamoDB::Table", {}))
    template.parameter("Environment", {"Type": "String"})
    template.condition("HasTopic", {"Fn::Equals": ["a", "b"]})
    template.output("TableName", {"Ref": "Table"})

    with pytest.raises(TemplateError, match="resource Table"):
        template.add("Table", Resource("AWS::DynamoDB::Table", {"TableName": "other"}))
    with pytest.raises(TemplateError, match="parameter Environment"):
        template.parameter("Environment", {"Type": "Number"})
    with pytest.raises(TemplateError, match="condition HasTopic"):
        template.condition("HasTopic", {})
    with pytest.raises(TemplateError, match="output TableName"):
        template.output("TableName", "x")
    assert template.render()["Resources"]["Table"]["Properties"] == {}


def test_given_a_resource_then_its_checkov_skips_are_the_type_s_overridden_by_its_own_each_with_a_reason() -> None:
    plain = Resource("AWS::DynamoDB::Table", {}).render()
    own = Resource("AWS::DynamoDB::Table", {}, skips={"CKV_AWS_119": "own reason", "CKV_AWS_28": "no backups"}).render()
    untyped = Resource("AWS::KMS::Alias", {}).render()

    assert [s["id"] for s in plain["Metadata"]["checkov"]["skip"]] == ["CKV_AWS_119"]
    assert own["Metadata"]["checkov"]["skip"] == [
        {"id": "CKV_AWS_119", "comment": "own reason"},
        {"id": "CKV_AWS_28", "comment": "no backups"},
    ]
    assert "Metadata" not in untyped


def test_given_the_registry_then_every_stage_has_grants_a_merge_template_and_parameters() -> None:
    assert set(STAGE_GRANTS) == set(STAGE_NAMES)
    for name in STAGE_NAMES:
        template = merge_template(name).render()
        assert set(template["Parameters"]) == set(stage_parameters(stage(name)))


@pytest.mark.parametrize("name", STAGE_NAMES)
def test_given_a_stage_then_its_template_environment_is_exactly_the_settings_it_reads(name: str) -> None:
    """The environment-parity promise on the template side: every setting the stage reads is
    in its functions' environment (local-only ones aside), and nothing else but its role."""
    entry = stage(name)
    expected = {ROLE_VARIABLE} | {v.env for v in entry.variables if not isinstance(v.source, LocalOnly)}
    template = merge_template(name).render()
    functions = [r for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::Function"]

    assert len(functions) == len(entry.functions)
    for function in functions:
        environment = function["Properties"]["Environment"]["Variables"]
        assert set(environment) == expected
        assert environment[ROLE_VARIABLE] == name
    assert "PII_VAULT_LOCAL_CALLER" not in json.dumps(template)


def test_given_the_masked_and_rewrap_stages_then_their_tables_are_the_ones_they_read() -> None:
    """The two deploy-only bugs: the masked stage lacked the tenant registry (502 for tenant-keyed
    records), the rewrap stage got two tables it never reads."""
    masked = variables(stage("masked"))
    rewrap = variables(stage("rewrap"))

    assert masked["PII_VAULT_TENANTS_TABLE"] == {
        "Fn::ImportValue": {"Fn::Sub": "pii-vault-${Environment}-TenantsTableName"}
    }
    assert "PII_VAULT_IDEMPOTENCY_TABLE" not in rewrap and "PII_VAULT_LEDGER_TABLE" not in rewrap


def test_given_base_outputs_and_parameters_then_the_environment_resolves_as_cloudformation_would() -> None:
    outputs = {spec.output: f"out-{spec.output}" for spec in SPECS}
    outputs[STREAM_OUTPUT] = "out-stream"
    callers = ["arn:aws:iam::111122223333:role/a", "arn:aws:iam::111122223333:role/b"]

    writer = resolve(stage("writer"), outputs, {"AllowedCallers": callers, "KeyScope": "tenant"})
    reader = resolve(stage("reader"), outputs, {"PreviousKmsKeyIds": ["k1", "k2"]})
    indexer = resolve(stage("indexer"), outputs, {})

    assert writer["PII_VAULT_ROLE"] == "writer"
    assert writer["PII_VAULT_TABLE"] == "out-TableName" and writer["PII_VAULT_KMS_KEY_ID"] == "out-KeyArn"
    assert writer["PII_VAULT_ALLOWED_CALLERS"] == ",".join(callers)
    assert writer["PII_VAULT_KEY_SCOPE"] == "tenant"
    assert writer["PII_VAULT_WRITER_KEY_CACHE_SECONDS"] == "3600"  # the default
    assert reader["PII_VAULT_PREVIOUS_KMS_KEY_IDS"] == "k1,k2"
    assert reader["PII_VAULT_ALLOWED_CALLERS"] == ""  # nobody
    assert indexer["PII_VAULT_STREAM_ARN"] == "out-stream"
    assert set(writer) == set(stage_values(stage("writer")))


def test_given_every_tunable_then_it_is_a_parameter_of_its_stage_and_settable_per_environment(tmp_path: Path) -> None:
    for entry in STAGES:
        declared = stage_parameters(entry)
        for setting in entry.variables:
            if isinstance(setting.source, Tunable):
                assert tunable_parameter(setting) in declared, (entry.name, setting.env)
    (tmp_path / "t.json").write_text(json.dumps({"writer": {"KeyScope": "tenant"}}), encoding="utf-8")

    values = stage_parameter_values("t", "writer", tmp_path)

    assert values["KeyScope"] == "tenant" and values["WriterKeyCacheSeconds"] == 3600
    assert values["Environment"] == "t"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"writer": {"KeyScop": "tenant"}}, "not a parameter of the writer stack: KeyScop"),
        ({"offboard": {"KeyScope": "tenant"}}, "not a parameter of the offboard stack"),
        ({"admin": {}}, "sections"),
        ({"writer": []}, "not an object"),
    ],
)
def test_given_a_parameter_file_naming_what_a_stack_does_not_declare_then_it_is_refused(
    tmp_path: Path, content: dict[str, Any], message: str
) -> None:
    (tmp_path / "t.json").write_text(json.dumps(content), encoding="utf-8")

    with pytest.raises(TemplateError, match=message):
        load_params("t", tmp_path)


@pytest.mark.parametrize("name", [s.name for s in STAGES if s.kind == "api"])
def test_given_an_api_stage_then_api_gateway_s_own_answers_are_the_api_s_json_errors(name: str) -> None:
    """The gateway responses chalicelib states for the local gateway too (chalicelib/api/gateway_responses.py)."""
    from chalicelib.api.gateway_responses import openapi_extension

    body = merge_template(name).render()["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    responses = body["x-amazon-apigateway-gateway-responses"]

    assert responses == openapi_extension()["x-amazon-apigateway-gateway-responses"]
    assert {"MISSING_AUTHENTICATION_TOKEN", "ACCESS_DENIED", "DEFAULT_4XX", "DEFAULT_5XX"} <= set(responses)
    # An unknown route and a refused caller: the same 404, so nobody learns which routes exist.
    assert responses["MISSING_AUTHENTICATION_TOKEN"] == responses["ACCESS_DENIED"]
    assert responses["MISSING_AUTHENTICATION_TOKEN"]["statusCode"] == "404"
    for response in responses.values():
        assert response["responseParameters"]["gatewayresponse.header.Cache-Control"] == "'no-store'"
        assert set(json.loads(response["responseTemplates"]["application/json"])) == {"code", "message"}


def test_given_the_specs_then_names_outputs_and_aliases_are_unique() -> None:
    assert len({spec.suffix for spec in TABLES.values()}) == len(TABLES)
    assert len({spec.output for spec in SPECS}) == len(TABLES) + len(KEYS)
    assert len({spec.logical_id for spec in SPECS}) == len(TABLES) + len(KEYS)
    assert len({spec.alias() for spec in KEYS.values()}) == len(KEYS)


def test_given_base_outputs_then_a_stage_deployment_holds_what_the_merge_template_would_set(tmp_path: Path) -> None:
    """The concrete values a deploy path without intrinsics needs (issue 22's chalice deploy)."""
    from infra.deployment import stage_deployment
    from tests.base_outputs import base_outputs

    callers = ["arn:aws:iam::111122223333:role/app"]
    params = {"reader": {"AllowedCallers": callers, "ReservedConcurrency": 3, "ReaderKeyCacheSeconds": 60}}
    (tmp_path / "t.json").write_text(json.dumps(params), encoding="utf-8")
    outputs = base_outputs("t", ReaderRoleArn="arn:aws:iam::111122223333:role/r")

    reader = stage_deployment("reader", "t", outputs, tmp_path)

    assert reader.role_arn == "arn:aws:iam::111122223333:role/r"
    assert reader.variables["PII_VAULT_READER_KEY_CACHE_SECONDS"] == "60"
    assert reader.variables["PII_VAULT_ALLOWED_CALLERS"] == callers[0]
    assert reader.reserved_concurrency == 3 and reader.api is not None
    (settings,) = reader.api.method_settings
    assert (settings["ThrottlingRateLimit"], settings["ThrottlingBurstLimit"]) == ("50", "100")  # the defaults
    assert reader.api.name == "pii-vault-t-reader"
    assert reader.api.resource_policy["Statement"][0]["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": callers}}
    (function,) = reader.functions
    assert (function.name, function.log_group) == ("pii-vault-t-reader", "/aws/lambda/pii-vault-t-reader")
    assert function.logging_config["LogFormat"] == "JSON"
    assert reader.tags == {"app": "pii-vault", "environment": "t"}
    indexer = stage_deployment("indexer", "t", outputs, tmp_path)
    assert [f.name for f in indexer.functions] == ["pii-vault-t-indexer-index_beacons", "pii-vault-t-indexer-backfill"]
    assert indexer.api is None and indexer.variables["PII_VAULT_STREAM_ARN"] == outputs[STREAM_OUTPUT]


def test_given_the_chalice_config_then_its_stages_and_function_timeouts_are_the_registry_s() -> None:
    """chalice package reads .chalice/config.json; the registry says what each stage is."""
    config = json.loads((Path(__file__).resolve().parents[2] / ".chalice" / "config.json").read_text())

    assert set(config["stages"]) == set(STAGE_NAMES)
    for entry in STAGES:
        section = config["stages"][entry.name]
        assert section["environment_variables"]["PII_VAULT_ROLE"] == entry.name
        for function in entry.functions:
            configured = section.get("lambda_functions", {}).get(function.name, {})
            assert configured.get("lambda_timeout", config["lambda_timeout"]) == function.timeout_seconds
            assert configured.get("lambda_memory_size", config["lambda_memory_size"]) == function.memory_mb


@pytest.mark.parametrize("name", STAGE_NAMES)
def test_given_a_stage_then_its_deployed_environment_equals_its_local_one_but_for_the_local_caller(name: str) -> None:
    """Local runs what deploys: the template's environment, resolved against a base stack whose
    outputs are the local stack's resources, is the local stack's environment for the stage
    (tools.devstack.local_environment), except the documented local-only stand-in caller."""
    from chalicelib.support.environment import LocalOnly as LocalOnlySource
    from tools.devstack import LOCAL_CALLER_ROLE, local_environment

    resources = {f"{spec.label}_name": spec.name() for spec in TABLES.values()}
    resources.update(
        {f"{spec.label}_arn": f"arn:aws:kms:us-east-1:000000000000:key/{spec.label}" for spec in KEYS.values()}
    )
    resources["stream_arn"] = "arn:aws:dynamodb:us-east-1:000000000000:table/pii-vault/stream/x"
    outputs = {spec.output: resources[f"{spec.label}_name"] for spec in TABLES.values()}
    outputs.update({spec.output: resources[f"{spec.label}_arn"] for spec in KEYS.values()})
    outputs[STREAM_OUTPUT] = resources["stream_arn"]
    entry = stage(name)
    local_only = {v.env for v in entry.variables if isinstance(v.source, LocalOnlySource)}

    local = local_environment(entry, resources)
    deployed = resolve(entry, outputs, {"AllowedCallers": [LOCAL_CALLER_ROLE]})

    assert deployed == {k: v for k, v in local.items() if k not in local_only}
    assert local_only <= {"PII_VAULT_LOCAL_CALLER"}


def test_given_infra_then_it_imports_none_of_the_app_s_wiring() -> None:
    """Templates and policies come from the registry and the store's layout, never from the app."""
    import subprocess
    import sys

    code = (
        "import sys, infra.__main__, infra.local, infra.deployment, infra.examples;"
        "print(sorted(m for m in sys.modules if m.startswith(("
        "'chalicelib.api.', 'chalicelib.stages.app', 'chalicelib.stages.wiring', 'chalicelib.service', 'boto3'))"
        " and m not in ('chalicelib.api.gateway_responses', 'chalicelib.api.contract')))"
    )
    root = Path(__file__).resolve().parents[2]
    loaded = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)

    assert loaded.stdout.strip() == "[]"
