"""The deployable artefact of each stage, as ``make package`` builds it (``python -m infra``:
``chalice package`` with the generated merge template, then bytecode added to the zip).

In-process tests build apps with ``create_app(role)``; only packaging proves what a
deployed stage gets: which routes its API exposes (the job stages: no API, only their
functions), which role runs it, which environment its functions see, what feeds the
indexer (the base stack's table stream), and what ships in its zip. Needs the package index (or a
warm ``.chalice/deployments`` cache) for the manylinux wheels; a few seconds per stage.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chalicelib.api import functions as job_functions
from chalicelib.stages import API_STAGE_NAMES, JOB_STAGE_NAMES, JOB_STAGES, STAGE_NAMES, Function, Trigger
from chalicelib.stages import stage as registry_stage
from chalicelib.stages.registry import STREAM_DELIVERY
from chalicelib.store import layout, tables
from chalicelib.support import config
from infra.chalice_config import ROLE_STAND_IN, STREAM_STAND_IN
from infra.iam import KEY_POLICY_ADMIN_SID

# `chalice package` caches its deployment zip in the project's .chalice/deployments: two workers
# packaging at once would write the same file. make test runs pytest -n with --dist loadfile, so
# this module (its one module-scoped `packaged` run) stays on one worker.
pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CUSTOMER = "/customers/{customer_id}"
# Each route and the API stages that serve it. Masked projections of people only: no secrets,
# no search, no write; the reader's search is a POST so the email stays out of URLs.
ROUTE_STAGES = {
    ("POST", f"{CUSTOMER}/people"): {"writer"},
    ("PUT", f"{CUSTOMER}/people/{{person_id}}"): {"writer"},
    ("PATCH", f"{CUSTOMER}/people/{{person_id}}"): {"writer"},
    ("DELETE", f"{CUSTOMER}/people/{{person_id}}"): {"writer"},
    ("PUT", f"{CUSTOMER}/secrets/{{secret_id}}"): {"writer"},
    ("DELETE", f"{CUSTOMER}/secrets/{{secret_id}}"): {"writer"},
    ("GET", f"{CUSTOMER}/people/{{person_id}}"): {"reader", "masked"},
    ("GET", f"{CUSTOMER}/people"): {"reader", "masked"},
    ("POST", f"{CUSTOMER}/people/search"): {"reader"},
    ("GET", f"{CUSTOMER}/secrets/{{secret_id}}"): {"reader"},
    ("GET", f"{CUSTOMER}/secrets/{{secret_id}}/versions"): {"reader"},
}


def _expected_routes(stage: str) -> set[tuple[str, str]]:
    return {route for route, stages in ROUTE_STAGES.items() if stage in stages}


def _logical_id(function: Function) -> str:
    """The logical id chalice package gives a function: APIHandler for the routes, else its CamelCase name."""
    return "APIHandler" if function.trigger == Trigger.HTTP else function.name.title().replace("_", "")


def _import(name: str) -> dict[str, Any]:
    return {"Fn::ImportValue": {"Fn::Sub": f"pii-vault-${{Environment}}-{name}"}}


# Dev/test tooling that must never reach Lambda (boto3/botocore come from the runtime).
FORBIDDEN_IN_ZIP = (
    "moto/",
    "pytest/",
    "_pytest/",
    "pluggy/",
    "boto3/",
    "botocore/",
    "s3transfer/",
    "click/",
    "flask/",
    "werkzeug/",
    "cfnlint/",
    "responses/",
    "docker/",
    "requests/",
    "tests/",
    "tools/",
    "infra/",
    ".venv/",
    ".chalice/",
)


@dataclass(frozen=True)
class Package:
    stage: str
    template: dict[str, Any]
    zip_names: list[str]
    zip_path: Path
    seconds: float


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """``python -m infra package`` (what ``make package`` runs) into a temp dir."""
    out = tmp_path_factory.mktemp("package")
    env = {k: v for k, v in os.environ.items() if k not in ("PII_VAULT_ROLE", "AWS_ENDPOINT_URL")}
    env.update(AWS_DEFAULT_REGION="us-east-1", PYTHONDONTWRITEBYTECODE="1")
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "infra", "package", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, f"infra package failed:\n{result.stdout}\n{result.stderr}"
    return out, time.monotonic() - started


def _load(stage: str, packaged: tuple[Path, float]) -> Package:
    out, seconds = packaged
    with zipfile.ZipFile(out / stage / "deployment.zip") as archive:
        names = archive.namelist()
    template = json.loads((out / stage / "sam.json").read_text(encoding="utf-8"))
    return Package(stage, template, names, out / stage / "deployment.zip", seconds)


@pytest.fixture(scope="module", params=STAGE_NAMES)
def package(request: pytest.FixtureRequest, packaged: tuple[Path, float]) -> Package:
    """Every stage: API stages and job stages."""
    return _load(request.param, packaged)


@pytest.fixture(scope="module", params=API_STAGE_NAMES)
def api_package(request: pytest.FixtureRequest, packaged: tuple[Path, float]) -> Package:
    return _load(request.param, packaged)


@pytest.fixture(scope="module")
def base(packaged: tuple[Path, float]) -> dict[str, Any]:
    out, _ = packaged
    template: dict[str, Any] = json.loads((out / "base.json").read_text(encoding="utf-8"))
    return template


def _resources_of_type(template: dict[str, Any], type_name: str) -> dict[str, Any]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == type_name}


def _functions(template: dict[str, Any]) -> dict[str, Any]:
    return _resources_of_type(template, "AWS::Serverless::Function")


def test_given_an_api_stage_when_packaged_then_its_api_has_exactly_that_stage_routes(api_package: Package) -> None:
    paths = api_package.template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]

    routes = {(method.upper(), path) for path, item in paths.items() for method in item}

    assert routes == _expected_routes(api_package.stage)


def test_given_a_stage_when_packaged_then_it_holds_only_its_own_functions_and_a_job_stage_no_api(
    package: Package,
) -> None:
    functions = _functions(package.template)
    apis = _resources_of_type(package.template, "AWS::Serverless::Api")

    entry = registry_stage(package.stage)
    assert set(functions) == {_logical_id(f) for f in entry.functions}
    if entry.kind == "api":
        assert list(apis) == ["RestAPI"]
    else:
        # No route, no API, no invoke permission for API Gateway: invoked by the stream or by tools.jobs.
        assert not apis and not _resources_of_type(package.template, "AWS::Lambda::Permission")
        assert {f["Properties"]["Handler"] for f in functions.values()} == {f"app.{f.name}" for f in entry.functions}


def test_given_an_api_stage_when_packaged_then_every_route_requires_sigv4(api_package: Package) -> None:
    swagger = api_package.template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]

    assert swagger["securityDefinitions"]["sigv4"]["x-amazon-apigateway-authtype"] == "awsSigv4"
    for path, item in swagger["paths"].items():
        for method, operation in item.items():
            assert operation.get("security") == [{"sigv4": []}], f"{method.upper()} {path} is not IAM-authorized"


def test_given_a_stage_when_packaged_then_its_functions_run_as_the_base_stack_role_of_that_stage(
    package: Package, base: dict[str, Any]
) -> None:
    """The role (and its generated policy) lives in the base stack, next to the key whose
    policy names it; the stage template creates no role of its own."""
    role = f"{package.stage.capitalize()}RoleArn"

    assert not _resources_of_type(package.template, "AWS::IAM::Role")
    for function in _functions(package.template).values():
        assert function["Properties"]["Role"] == _import(role)
    assert base["Outputs"][role]["Value"] == {"Fn::GetAtt": [f"{package.stage.capitalize()}Role", "Arn"]}


def test_given_a_stage_when_packaged_then_every_import_is_an_export_of_the_base_stack_and_no_placeholder_is_left(
    package: Package, base: dict[str, Any]
) -> None:
    exports = {o["Export"]["Name"]["Fn::Sub"] for o in base["Outputs"].values()}
    text = json.dumps(package.template)

    imports = set(re.findall(r'"Fn::ImportValue": \{"Fn::Sub": "([^"]+)"\}', text))
    assert imports and imports <= exports
    # .chalice/config.json's stand-ins (role, stream) are all replaced by the merge template.
    assert ROLE_STAND_IN not in text and STREAM_STAND_IN not in text


# What a deployed function's variable holds wherever it is set: the base stack's names and ARNs
# (the KMS key by ARN, not an alias as chalice local's default), the caller allow-list parameter.
DEPLOYED_VALUES = {
    "PII_VAULT_TABLE": _import("TableName"),
    "PII_VAULT_KMS_KEY_ID": _import("KeyArn"),
    "PII_VAULT_ALLOWED_CALLERS": {"Fn::Join": [",", {"Ref": "AllowedCallers"}]},
    "PII_VAULT_IDEMPOTENCY_TABLE": _import("IdempotencyTableName"),
    "PII_VAULT_LEDGER_TABLE": _import("LedgerTableName"),
    "PII_VAULT_BEACON_KEY_ID": _import("BeaconKeyArn"),
    "PII_VAULT_STREAM_ARN": _import("TableStreamArn"),
    "PII_VAULT_JOBS_TABLE": _import("JobsTableName"),
    "PII_VAULT_TENANTS_TABLE": _import("TenantsTableName"),
}
# Which stages a variable is given to, by what they do.
GIVEN_TO = {
    "PII_VAULT_TABLE": set(STAGE_NAMES),
    "PII_VAULT_KMS_KEY_ID": set(STAGE_NAMES) - {"offboard", "rewrap"},  # rewrap: the key ids come with each event
    "PII_VAULT_ALLOWED_CALLERS": set(API_STAGE_NAMES),  # API Gateway's callers
    "PII_VAULT_IDEMPOTENCY_TABLE": {"writer", "offboard"},  # acknowledged requests, replayed
    "PII_VAULT_LEDGER_TABLE": {"writer", "offboard"},  # the erasures they record
    "PII_VAULT_BEACON_KEY_ID": {"reader", "indexer"},  # search: the beacon HMAC key, pinned by ARN
    "PII_VAULT_STREAM_ARN": {"indexer"},
    "PII_VAULT_JOBS_TABLE": set(JOB_STAGE_NAMES),  # the jobs' checkpoints
    # Every stage that seals or opens a record resolves a tenant's own key (issue 20: masked had none).
    "PII_VAULT_TENANTS_TABLE": {*API_STAGE_NAMES, "indexer"},
}


def test_given_a_stage_when_packaged_then_the_function_environment_names_the_role_the_tables_and_keys_by_arn(
    package: Package,
) -> None:
    expected = {"PII_VAULT_ROLE": package.stage} | {
        name: DEPLOYED_VALUES[name] for name, stages in GIVEN_TO.items() if package.stage in stages
    }
    absent = {name for name, stages in GIVEN_TO.items() if package.stage not in stages}
    entry = registry_stage(package.stage)
    for function in _functions(package.template).values():
        variables = function["Properties"]["Environment"]["Variables"]
        assert {k: variables.get(k) for k in expected} == expected
        assert not absent & set(variables)
        # Exactly the variables the stage reads (the registry's), nothing left over from chalice's config.
        assert set(variables) == {"PII_VAULT_ROLE", *(v.env for v in entry.deployed_variables)}
    if package.stage == "offboard":  # no KMS permission: no beacon key, no stream
        assert not {k for k in variables if "BEACON" in k or "STREAM" in k}
    if package.stage == "rewrap":  # reads the table and its checkpoints, nothing else
        assert not {k for k in variables if "IDEMPOTENCY" in k or "LEDGER" in k or "FLEET" in k}


def test_given_the_indexer_stage_when_packaged_then_its_stream_handler_reads_the_base_stack_table_stream(
    packaged: tuple[Path, float], base: dict[str, Any]
) -> None:
    indexer = _load("indexer", packaged).template
    functions = _functions(indexer)
    (name,) = (n for n, f in functions.items() if "Events" in f["Properties"])  # one event source, one function
    (event,) = functions[name]["Properties"]["Events"].values()

    assert functions[name]["Properties"]["Handler"] == f"app.{job_functions.STREAM_FUNCTION}"
    assert event["Type"] == "DynamoDB"
    assert event["Properties"]["Stream"] == _import("TableStreamArn")
    assert event["Properties"]["StartingPosition"] == "TRIM_HORIZON"
    assert event["Properties"]["BatchSize"] == STREAM_DELIVERY.batch_size
    # A poison batch never holds the shard: bisected, retried a bounded number of times, parked.
    assert event["Properties"]["BisectBatchOnFunctionError"] is True
    assert event["Properties"]["MaximumRetryAttempts"] == STREAM_DELIVERY.max_retry_attempts
    destination = event["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]
    assert destination == _import("IndexerFailureQueueArn")
    assert base["Outputs"]["IndexerFailureQueueArn"]["Value"] == {"Fn::GetAtt": ["IndexerFailureQueue", "Arn"]}
    assert base["Outputs"]["TableStreamArn"]["Value"] == {"Fn::GetAtt": ["PiiTable", "StreamArn"]}
    # The job functions work one segment per invocation, for up to Lambda's 15 minutes.
    for stage, function in (("indexer", "Backfill"), ("offboard", "Offboard")):
        assert _functions(_load(stage, packaged).template)[function]["Properties"]["Timeout"] == 900


def test_given_the_base_template_then_it_holds_the_beacon_key_the_stream_the_beacon_index_and_the_jobs_table(
    base: dict[str, Any],
) -> None:
    resources = base["Resources"]
    key = resources["BeaconKey"]["Properties"]
    table = resources["PiiTable"]["Properties"]
    jobs = resources["JobsTable"]["Properties"]

    assert (key["KeySpec"], key["KeyUsage"]) == ("HMAC_256", "GENERATE_VERIFY_MAC")
    assert resources["BeaconKey"]["DeletionPolicy"] == "Retain"
    mac = [s for s in key["KeyPolicy"]["Statement"] if s["Sid"] != KEY_POLICY_ADMIN_SID]
    assert [(s["Action"], s["Principal"]["AWS"]) for s in mac] == [
        ("kms:GenerateMac", [{"Fn::GetAtt": ["ReaderRole", "Arn"]}, {"Fn::GetAtt": ["IndexerRole", "Arn"]}])
    ]
    # The indexer compares the old and new email ciphertexts of a MODIFY: it needs both images.
    assert table["StreamSpecification"] == {"StreamViewType": "KEYS_ONLY"}
    # Beacons have a table of their own (issue 21 A): the PII table carries no beacon and no index on one.
    assert "GlobalSecondaryIndexes" not in table
    assert {a["AttributeName"] for a in table["AttributeDefinitions"]} == {layout.PK, layout.SK}
    beacons = resources["BeaconTable"]["Properties"]
    (index,) = beacons["GlobalSecondaryIndexes"]
    assert index == {
        "IndexName": layout.BEACON_INDEX,
        "KeySchema": [
            {"AttributeName": layout.PK, "KeyType": "HASH"},
            {"AttributeName": layout.BEACON, "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "KEYS_ONLY"},
    }
    assert {"AttributeName": layout.BEACON, "AttributeType": "B"} in beacons["AttributeDefinitions"]
    assert jobs["TableName"] == {"Fn::Sub": f"pii-vault-${{Environment}}{config.JOBS_SUFFIX}"}
    assert jobs["KeySchema"] == [
        {"AttributeName": tables.JOB_PK, "KeyType": "HASH"},
        {"AttributeName": tables.JOB_SK, "KeyType": "RANGE"},
    ]
    for role in ("IndexerRole", "OffboardRole"):
        policy_resources = [
            r
            for r in resources.values()
            if r["Type"] == "AWS::IAM::Policy" and r["Properties"]["Roles"] == [{"Ref": role}]
        ]
        assert len(policy_resources) == 2  # the generated policy and the tracing policy


def test_given_a_stage_when_packaged_then_function_log_groups_are_the_base_stack_groups_its_role_may_write(
    package: Package, base: dict[str, Any]
) -> None:
    """Each function logs (JSON) to a group the base stack creates (retention, metric filters,
    alarms by that name) and which its role's generated policy lets it write."""
    groups = {
        r["Properties"]["LogGroupName"]["Fn::Sub"]
        for r in base["Resources"].values()
        if r["Type"] == "AWS::Logs::LogGroup"
    }
    role_policy = base["Resources"][f"{package.stage.capitalize()}Policy"]["Properties"]["PolicyDocument"]
    writable = {
        r["Fn::Sub"].split(":log-group:")[1]
        for s in role_policy["Statement"]
        if s["Sid"].startswith("WriteOwnLogs")
        for r in s["Resource"]
    }
    for function in _functions(package.template).values():
        props = function["Properties"]
        name = props["FunctionName"]["Fn::Sub"]
        assert name.startswith(f"pii-vault-${{Environment}}-{package.stage}")
        assert props["LoggingConfig"] == {
            "LogFormat": "JSON",
            "LogGroup": {"Fn::Sub": f"/aws/lambda/{name}"},
            "ApplicationLogLevel": "INFO",
            "SystemLogLevel": "WARN",
        }
        assert f"/aws/lambda/{name}" in groups and f"/aws/lambda/{name}" in writable
        assert props["Tracing"] == "Active"
        assert props["ReservedConcurrentExecutions"] == {"Ref": "ReservedConcurrency"}
    if registry_stage(package.stage).kind == "api":
        assert package.template["Resources"]["RestAPI"]["Properties"]["Name"] == {
            "Fn::Sub": f"pii-vault-${{Environment}}-{package.stage}"
        }


def test_given_the_indexer_in_the_base_template_then_errors_lag_and_integrity_lines_raise_alarms(
    base: dict[str, Any],
) -> None:
    alarms = {n: r["Properties"] for n, r in base["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"}

    age = alarms["IndexerIteratorAgeAlarm"]
    assert (age["Namespace"], age["MetricName"], age["Statistic"]) == ("AWS/Lambda", "IteratorAge", "Maximum")
    assert age["Dimensions"] == [
        {
            "Name": "FunctionName",
            "Value": {"Fn::Sub": f"pii-vault-${{Environment}}-indexer-{job_functions.STREAM_FUNCTION}"},
        }
    ]
    for job in JOB_STAGES:
        for function in job.functions:
            name = f"pii-vault-${{Environment}}-{job.name}-{function.name}"
            dims = [{"Name": "FunctionName", "Value": {"Fn::Sub": name}}]
            metrics = {a["MetricName"] for a in alarms.values() if a.get("Dimensions") == dims}
            assert {"Errors", "Throttles"} <= metrics, name
    assert alarms["IndexerIntegrityErrorsAlarm"]["MetricName"] == "IndexerIntegrityErrors"


def test_given_an_api_stage_when_packaged_then_its_api_carries_the_allow_list_resource_policy(
    api_package: Package,
) -> None:
    swagger = api_package.template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]

    assert swagger["x-amazon-apigateway-policy"]["Fn::If"][0] == "HasAllowedCallers"
    assert "paths" in swagger and swagger["info"]["title"] == "pii-vault"  # merged, not replaced
    # API Gateway's own answers (unknown route, unsigned, denied) in the JSON error shape.
    responses = swagger["x-amazon-apigateway-gateway-responses"]
    assert responses["MISSING_AUTHENTICATION_TOKEN"]["statusCode"] == "404"
    assert json.loads(responses["ACCESS_DENIED"]["responseTemplates"]["application/json"])["code"] == "not_found"


def test_given_a_stage_when_packaged_then_the_zip_holds_bytecode_for_the_function_runtime(package: Package) -> None:
    (runtime,) = {f["Properties"]["Runtime"] for f in _functions(package.template).values()}
    tag = "cpython-" + runtime.removeprefix("python").replace(".", "")
    sources = {n for n in package.zip_names if n.endswith(".py")}
    compiled = {n for n in package.zip_names if n.endswith(f".{tag}.pyc")}

    assert f"__pycache__/app.{tag}.pyc" in compiled
    assert "chalicelib/api/__pycache__/__init__." + tag + ".pyc" in compiled
    assert len(compiled) == len(sources)  # one per module, none for another interpreter
    assert not [n for n in package.zip_names if n.endswith(".pyc") and f".{tag}." not in n]


def test_given_a_stage_when_packaged_then_the_zip_ships_linux_cryptography_and_no_dev_tooling(package: Package) -> None:
    names = package.zip_names
    wheel_tags = [n for n in names if n.startswith("cryptography-") and n.endswith(".dist-info/WHEEL")]

    assert "app.py" in names and "chalicelib/api/__init__.py" in names
    assert "cryptography/hazmat/bindings/_rust.abi3.so" in names
    assert len(wheel_tags) == 1
    with zipfile.ZipFile(package.zip_path) as archive:
        assert "manylinux" in archive.read(wheel_tags[0]).decode()
    assert sorted(n for n in names if n.startswith("chalice/") and n.endswith(".py")) == [
        "chalice/__init__.py",
        "chalice/app.py",
    ]
    assert not [n for n in names if n.startswith(FORBIDDEN_IN_ZIP)]
    # chalicelib/ ships as code and its bytecode, nothing else.
    assert not [n for n in names if n.startswith("chalicelib/") and not n.endswith((".py", ".pyc"))]


def test_given_every_packaged_artefact_then_none_holds_a_literal_account_id(packaged: tuple[Path, float]) -> None:
    out, _ = packaged
    texts = [p for p in out.rglob("*.json")]

    assert len(texts) >= 1 + 2 * len(STAGE_NAMES)  # base, a merge template and a sam.json per stage
    for path in texts:
        assert not re.search(r"(?<![0-9])[0-9]{12}(?![0-9])", path.read_text(encoding="utf-8")), path


def test_given_the_masked_stage_when_packaged_then_its_function_knows_no_fleet_idempotency_or_ledger_table(
    packaged: tuple[Path, float],
) -> None:
    """The masked stage reads the PII table (masked attributes) and nothing else: no other table is configured."""
    out, _ = packaged
    template = json.loads((out / "masked" / "sam.json").read_text(encoding="utf-8"))
    variables = _functions(template)["APIHandler"]["Properties"]["Environment"]["Variables"]

    assert variables["PII_VAULT_ROLE"] == "masked"
    assert not [name for name in variables if any(word in name for word in ("FLEET", "IDEMPOTENCY", "LEDGER"))]
