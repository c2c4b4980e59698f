"""The deployable artefact of each stage, as ``make package`` builds it (``tools.stacks``:
``chalice package`` with the generated merge template, then bytecode added to the zip).

In-process tests build apps with ``create_app(role)``; only packaging proves what a
deployed stage gets: which routes its API exposes, which IAM policy its role holds,
which environment its function sees, and what ships in its zip. Needs the package index (or a
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

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CUSTOMER = "/customers/{customer_id}"
EXPECTED_ROUTES = {
    "writer": {
        ("POST", f"{CUSTOMER}/people"),
        ("PUT", f"{CUSTOMER}/people/{{person_id}}"),
        ("PATCH", f"{CUSTOMER}/people/{{person_id}}"),
        ("DELETE", f"{CUSTOMER}/people/{{person_id}}"),
        ("PUT", f"{CUSTOMER}/secrets/{{secret_id}}"),
        ("DELETE", f"{CUSTOMER}/secrets/{{secret_id}}"),
    },
    "reader": {
        ("GET", f"{CUSTOMER}/people/{{person_id}}"),
        ("GET", f"{CUSTOMER}/people"),
        ("POST", f"{CUSTOMER}/people/search"),  # read-only: a POST so the email stays out of URLs
        ("GET", f"{CUSTOMER}/secrets/{{secret_id}}"),
        ("GET", f"{CUSTOMER}/secrets/{{secret_id}}/versions"),
    },
    # Masked projections of people only: no secrets, no search, no write.
    "masked": {
        ("GET", f"{CUSTOMER}/people/{{person_id}}"),
        ("GET", f"{CUSTOMER}/people"),
    },
}
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
    ".venv/",
    ".chalice/",
)


@dataclass(frozen=True)
class Package:
    stage: str
    template: dict
    zip_names: list[str]
    zip_path: Path
    seconds: float


@pytest.fixture(scope="module")
def packaged(tmp_path_factory) -> tuple[Path, float]:
    """``python -m tools.stacks package`` (what ``make package`` runs) into a temp dir."""
    out = tmp_path_factory.mktemp("package")
    env = {k: v for k, v in os.environ.items() if k not in ("PII_VAULT_ROLE", "AWS_ENDPOINT_URL")}
    env.update(AWS_DEFAULT_REGION="us-east-1", PYTHONDONTWRITEBYTECODE="1")
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "tools.stacks", "package", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, f"tools.stacks package failed:\n{result.stdout}\n{result.stderr}"
    return out, time.monotonic() - started


@pytest.fixture(scope="module", params=sorted(EXPECTED_ROUTES))
def package(request, packaged) -> Package:
    stage = request.param
    out, seconds = packaged
    with zipfile.ZipFile(out / stage / "deployment.zip") as archive:
        names = archive.namelist()
    template = json.loads((out / stage / "sam.json").read_text(encoding="utf-8"))
    return Package(stage, template, names, out / stage / "deployment.zip", seconds)


def _resources_of_type(template: dict, type_name: str) -> dict:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == type_name}


def _the_function(template: dict) -> dict:
    functions = _resources_of_type(template, "AWS::Serverless::Function")
    assert list(functions) == ["APIHandler"], "one Lambda per stage: the API handler"
    return functions["APIHandler"]


def test_given_a_stage_when_packaged_then_its_api_has_exactly_that_stage_routes(package):
    paths = package.template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]

    routes = {(method.upper(), path) for path, item in paths.items() for method in item}

    assert routes == EXPECTED_ROUTES[package.stage]


def test_given_a_stage_when_packaged_then_every_route_requires_sigv4(package):
    swagger = package.template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]

    assert swagger["securityDefinitions"]["sigv4"]["x-amazon-apigateway-authtype"] == "awsSigv4"
    for path, item in swagger["paths"].items():
        for method, operation in item.items():
            assert operation.get("security") == [{"sigv4": []}], f"{method.upper()} {path} is not IAM-authorized"


def test_given_a_stage_when_packaged_then_its_function_runs_as_the_base_stack_role(package):
    """The role (and its generated policy) lives in the base stack, next to the key whose
    policy names it; the stage template creates no role of its own."""
    assert not _resources_of_type(package.template, "AWS::IAM::Role")
    assert _the_function(package.template)["Properties"]["Role"] == {
        "Fn::ImportValue": {"Fn::Sub": f"pii-vault-${{Environment}}-{package.stage.capitalize()}RoleArn"}
    }


def test_given_a_stage_when_packaged_then_the_function_environment_names_that_role_and_the_key_by_arn(package):
    variables = _the_function(package.template)["Properties"]["Environment"]["Variables"]

    assert variables["PII_VAULT_ROLE"] == package.stage
    # Not the alias of .chalice/config.json (for chalice local): the base stack's key ARN.
    assert variables["PII_VAULT_KMS_KEY_ID"] == {"Fn::ImportValue": {"Fn::Sub": "pii-vault-${Environment}-KeyArn"}}
    assert variables["PII_VAULT_TABLE"] == {"Fn::ImportValue": {"Fn::Sub": "pii-vault-${Environment}-TableName"}}
    assert variables["PII_VAULT_ALLOWED_CALLERS"] == {"Fn::Join": [",", {"Ref": "AllowedCallers"}]}


def test_given_a_stage_when_packaged_then_its_api_carries_the_allow_list_resource_policy(package):
    swagger = package.template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]

    assert swagger["x-amazon-apigateway-policy"]["Fn::If"][0] == "HasAllowedCallers"
    assert "paths" in swagger and swagger["info"]["title"] == "pii-vault"  # merged, not replaced


def test_given_a_stage_when_packaged_then_the_zip_holds_bytecode_for_the_function_runtime(package):
    runtime = _the_function(package.template)["Properties"]["Runtime"]
    tag = "cpython-" + runtime.removeprefix("python").replace(".", "")
    sources = {n for n in package.zip_names if n.endswith(".py")}
    compiled = {n for n in package.zip_names if n.endswith(f".{tag}.pyc")}

    assert f"__pycache__/app.{tag}.pyc" in compiled
    assert "chalicelib/api/__pycache__/__init__." + tag + ".pyc" in compiled
    assert len(compiled) == len(sources)  # one per module, none for another interpreter
    assert not [n for n in package.zip_names if n.endswith(".pyc") and f".{tag}." not in n]


def test_given_a_stage_when_packaged_then_the_zip_ships_linux_cryptography_and_no_dev_tooling(package):
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


def test_given_a_stage_when_packaged_then_function_log_group_and_api_names_follow_the_environment(package):
    """The base stack creates the log group (retention, metric filters) and alarms by these names."""
    props = _the_function(package.template)["Properties"]
    name = f"pii-vault-${{Environment}}-{package.stage}"

    assert props["FunctionName"] == {"Fn::Sub": name}
    assert props["LoggingConfig"]["LogGroup"] == {"Fn::Sub": f"/aws/lambda/{name}"}
    assert props["LoggingConfig"]["LogFormat"] == "JSON"
    assert package.template["Resources"]["RestAPI"]["Properties"]["Name"] == {"Fn::Sub": name}


def test_given_every_packaged_artefact_then_none_holds_a_literal_account_id(packaged):
    out, _ = packaged
    texts = [p for p in out.rglob("*.json")]

    assert len(texts) >= 5  # base, two merge templates, two sam.json
    for path in texts:
        assert not re.search(r"(?<![0-9])[0-9]{12}(?![0-9])", path.read_text(encoding="utf-8")), path


def test_given_the_masked_stage_when_packaged_then_its_function_knows_no_fleet_idempotency_or_ledger_table(packaged):
    """The masked stage reads the PII table (masked attributes) and nothing else: no other table is configured."""
    out, _ = packaged
    template = json.loads((out / "masked" / "sam.json").read_text(encoding="utf-8"))
    variables = _the_function(template)["Properties"]["Environment"]["Variables"]

    assert variables["PII_VAULT_ROLE"] == "masked"
    assert not [name for name in variables if any(word in name for word in ("FLEET", "IDEMPOTENCY", "LEDGER"))]
