"""The deployable artefact of each stage, as ``chalice package`` builds it.

In-process tests build apps with ``create_app(role)``; only packaging proves what a
deployed stage gets: which routes its API exposes, which IAM policy its role holds,
which environment its function sees, and what ships in its zip. Needs the package index (or a
warm ``.chalice/deployments`` cache) for the manylinux wheels; a few seconds per stage.
"""

from __future__ import annotations

import json
import os
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
}
# Dev/test tooling that must never reach Lambda (boto3/botocore come from the runtime).
FORBIDDEN_IN_ZIP = (
    "moto/", "pytest/", "_pytest/", "pluggy/", "boto3/", "botocore/", "s3transfer/",
    "click/", "flask/", "werkzeug/", "cfnlint/", "responses/", "docker/", "requests/",
    "tests/", "tools/", ".venv/", ".chalice/",
)


@dataclass(frozen=True)
class Package:
    stage: str
    template: dict
    zip_names: list[str]
    zip_path: Path
    seconds: float


@pytest.fixture(scope="module", params=sorted(EXPECTED_ROUTES))
def package(request, tmp_path_factory) -> Package:
    """Run the venv's ``chalice package`` for one stage, from the project root."""
    stage = request.param
    out = tmp_path_factory.mktemp(f"package-{stage}")
    chalice = Path(sys.executable).with_name("chalice")
    assert chalice.exists(), f"chalice is not installed next to {sys.executable}"
    env = {k: v for k, v in os.environ.items() if k not in ("PII_VAULT_ROLE", "AWS_ENDPOINT_URL")}
    env.update(AWS_DEFAULT_REGION="us-east-1", PYTHONDONTWRITEBYTECODE="1")
    started = time.monotonic()
    result = subprocess.run(
        [str(chalice), "package", "--stage", stage, "--pkg-format", "cloudformation",
         "--merge-template", str(ROOT / ".chalice" / f"cfn-{stage}.json"), str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    seconds = time.monotonic() - started
    assert result.returncode == 0, f"chalice package --stage {stage} failed:\n{result.stdout}\n{result.stderr}"
    with zipfile.ZipFile(out / "deployment.zip") as archive:
        names = archive.namelist()
    template = json.loads((out / "sam.json").read_text(encoding="utf-8"))
    return Package(stage, template, names, out / "deployment.zip", seconds)


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


def test_given_a_stage_when_packaged_then_the_function_role_holds_only_the_committed_policy(package):
    committed = json.loads((ROOT / ".chalice" / f"policy-{package.stage}.json").read_text(encoding="utf-8"))
    roles = _resources_of_type(package.template, "AWS::IAM::Role")

    assert len(roles) == 1
    ((role_name, role),) = roles.items()
    assert _the_function(package.template)["Properties"]["Role"] == {"Fn::GetAtt": [role_name, "Arn"]}
    assert "ManagedPolicyArns" not in role["Properties"]
    (inline,) = role["Properties"]["Policies"]
    assert inline["PolicyDocument"] == committed


def test_given_a_stage_when_packaged_then_the_function_environment_names_that_role(package):
    variables = _the_function(package.template)["Properties"]["Environment"]["Variables"]

    assert variables["PII_VAULT_ROLE"] == package.stage


def test_given_a_stage_when_packaged_then_the_zip_ships_linux_cryptography_and_no_dev_tooling(package):
    names = package.zip_names
    wheel_tags = [n for n in names if n.startswith("cryptography-") and n.endswith(".dist-info/WHEEL")]

    assert "app.py" in names and "chalicelib/api/__init__.py" in names
    assert "cryptography/hazmat/bindings/_rust.abi3.so" in names
    assert len(wheel_tags) == 1
    with zipfile.ZipFile(package.zip_path) as archive:
        assert "manylinux" in archive.read(wheel_tags[0]).decode()
    assert sorted(n for n in names if n.startswith("chalice/")) == ["chalice/__init__.py", "chalice/app.py"]
    assert not [n for n in names if n.startswith(FORBIDDEN_IN_ZIP)]
    # chalice zips every file under chalicelib/ (bytecode included): nothing but code.
    assert not [n for n in names if n.startswith("chalicelib/") and not n.endswith((".py", ".pyc"))]


def test_given_a_stage_when_packaged_then_function_and_role_names_match_the_policies(package):
    """Unnamed, CloudFormation would call the function <stack>-APIHandler-<random>: its log
    group would miss the policy's /aws/lambda/pii-vault-<stage>, and its role ARN the key policy."""
    committed = json.loads((ROOT / ".chalice" / f"policy-{package.stage}.json").read_text(encoding="utf-8"))
    function_name = _the_function(package.template)["Properties"]["FunctionName"]
    (role,) = _resources_of_type(package.template, "AWS::IAM::Role").values()
    (logs,) = [s for s in committed["Statement"] if s["Sid"] == "WriteOwnLogs"]

    assert function_name == f"pii-vault-{package.stage}"
    assert all(r.split(":log-group:")[1].split(":")[0] == f"/aws/lambda/{function_name}" for r in logs["Resource"])
    # chalice deploy names the role <app>-<stage>-api_handler when iam_policy_file is used.
    assert role["Properties"]["RoleName"] == f"pii-vault-{package.stage}-api_handler"
