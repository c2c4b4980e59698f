"""``make rehearse``: both deploy paths of every stage, on one base stack, against a local moto.

    python -m tools.rehearse [--keep WORKDIR]

1. a moto server with the rehearsal's shims (``tools.rehearsal_moto``: API stages only), and the
   artifact bucket every stack's template is deployed from (``aws cloudformation deploy --s3-bucket``);
2. the base stack from ``infra`` (moto's CloudFormation evaluates export values before it creates
   anything, so the stack is created without ``Export`` and a companion stack exports its outputs
   under the same names); its roles hold exactly the generated policies;
3. the package path: ``python -m infra package`` (without its bytecode step), each stage's zip
   in an artifact bucket, the SAM transform (aws-sam-translator, as CloudFormation runs it on
   AWS), one stack per stage with its parameters from ``deploy/params/<env>.json``; checks; the
   guard refuses ``chalice deploy`` while the stage stacks exist; the stage stacks deleted;
4. the ``chalice deploy`` path: ``python -m infra chalice-project`` (the guard lets it through now),
   ``chalice deploy --stage rehearsal-<stage>`` and the post-deploy step (twice: idempotent) per
   stage; checks; the guard refuses the package path; ``chalice delete`` per stage;
5. the base stack deleted: what it retains is listed (the tables and keys that hold data).

Exits 0 when every check passes; says what moto does not check (``tools.rehearse_checks``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from chalicelib.stages import STAGE_NAMES, STAGES
from infra import postdeploy
from infra.arns import AccountArns
from infra.base import base_template
from infra.chalice_project import base_outputs, deployments, write_project
from infra.deployment import stage_context
from infra.guards import GuardError, base_stack, refuse_chalice_deploy, refuse_package_deploy, stage_stack
from infra.iam import stage_policy, tracing_policy
from infra.package import ROOT, package
from infra.params import load_params
from infra.resolve import resolve_value
from infra.roles import role_id
from infra.specs import KEYS, TABLES
from tools.devstack import FAKE_CREDENTIALS, REGION
from tools.ports import free_port
from tools.rehearse_checks import (
    NOT_CHECKED,
    Report,
    check_api_routes,
    check_api_stage,
    check_functions,
    check_logging_calls,
    rest_api,
)

ENV = "rehearsal"
BUCKET = "pii-vault-rehearsal-artifacts"
CHALICE = Path(sys.executable).with_name("chalice")


class Rehearsal:
    def __init__(self, workdir: Path, report: Report) -> None:
        self.workdir, self.report, self.log = workdir, report, report.log
        self.params_dir = workdir / "params"
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.routes: dict[str, set[tuple[str, str]]] = {}
        self.outputs: dict[str, str] = {}

    def client(self, service: str) -> Any:
        import boto3

        client = boto3.session.Session().client(service)
        client.meta.events.register("before-parameter-build.*.*", self._record)
        return client

    def _record(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.calls.append((model.name, dict(params)))

    # -- 2. the base stack -------------------------------------------------------------------

    def base(self) -> None:
        iam, cfn = self.client("iam"), self.client("cloudformation")
        self.client("s3").create_bucket(Bucket=BUCKET)
        admin = iam.create_role(RoleName="pii-vault-rehearsal-admin", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        example = json.loads((ROOT / "deploy" / "params" / "example.json").read_text(encoding="utf-8"))
        example["base"]["KeyAdminArn"] = admin
        self.params_dir.mkdir(parents=True)
        (self.params_dir / f"{ENV}.json").write_text(json.dumps(example, indent=2), encoding="utf-8")
        template = base_template().render()
        size = len(json.dumps(template, separators=(",", ":")))
        self.log(f"base template: {size:,} bytes (inline limit 51,200): every stack from the artifact bucket")
        for output in template["Outputs"].values():
            output.pop("Export")  # re-exported by the companion stack below
        for spec in KEYS.values():  # moto's CloudFormation passes key tags in the wrong shape
            template["Resources"][spec.logical_id]["Properties"].pop("Tags")
        self._create_stack(cfn, base_stack(ENV), template, load_params(ENV, self.params_dir)["base"])
        self.outputs = base_outputs(cfn, ENV)
        exports = {
            "Resources": {"Nothing": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
            "Outputs": {k: {"Value": v, "Export": {"Name": f"pii-vault-{ENV}-{k}"}} for k, v in self.outputs.items()},
        }
        self._create_stack(cfn, f"pii-vault-{ENV}-exports", exports, {})
        ddb = self.client("dynamodb")
        arns = AccountArns(
            {spec.key: self.outputs[spec.output] for spec in KEYS.values()},
            {t: ddb.describe_table(TableName=self.outputs[s.output])["Table"]["TableArn"] for t, s in TABLES.items()},
            functions=f"pii-vault-{ENV}",
        )
        for entry in STAGES:
            role = self.outputs[f"{role_id(entry.name)}Arn"].rsplit("/", 1)[1]
            names = iam.list_role_policies(RoleName=role)["PolicyNames"]
            documents = [iam.get_role_policy(RoleName=role, PolicyName=n)["PolicyDocument"] for n in names]
            documents = [json.loads(d) if isinstance(d, str) else d for d in documents]
            wanted = [stage_policy(entry.name, arns), tracing_policy()]
            self.report.check(
                f"base: the {entry.name} role holds exactly the generated policies",
                sorted(documents, key=json.dumps) == sorted(wanted, key=json.dumps),
            )

    def _create_stack(self, cfn: Any, name: str, template: dict[str, Any], parameters: dict[str, Any]) -> None:
        """As ``aws cloudformation deploy --s3-bucket``: the template from the artifact bucket (the
        base template is over CloudFormation's 51,200-byte limit for a template sent inline)."""
        body = json.dumps(template)
        self.client("s3").put_object(Bucket=BUCKET, Key=f"templates/{name}.json", Body=body.encode())
        values = [
            {"ParameterKey": k, "ParameterValue": ",".join(map(str, v)) if isinstance(v, list) else str(v)}
            for k, v in parameters.items()
        ]
        cfn.create_stack(
            StackName=name,
            TemplateURL=f"https://{BUCKET}.s3.amazonaws.com/templates/{name}.json",
            Parameters=values,
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
        (stack,) = cfn.describe_stacks(StackName=name)["Stacks"]
        if stack["StackStatus"] != "CREATE_COMPLETE":
            raise RuntimeError(f"{name}: {stack['StackStatus']} {stack.get('StackStatusReason')}")
        self.log(f"created stack {name}")

    # -- 3. the package path -----------------------------------------------------------------

    def package_path(self) -> None:
        from samtranslator.public.translator import ManagedPolicyLoader
        from samtranslator.translator.transform import transform

        lambda_, cfn, s3 = self.client("lambda"), self.client("cloudformation"), self.client("s3")
        self.report.check(
            "package: the guard lets the package path deploy", _refusal(refuse_package_deploy, lambda_) is None
        )
        out = self.workdir / "out"
        # No bytecode step: nothing here reads the zips' contents (tests/integration/test_package.py does).
        package(out, bytecode=False, log=self.log)
        params = load_params(ENV, self.params_dir)
        for name in STAGE_NAMES:
            template = json.loads((out / name / "sam.json").read_text(encoding="utf-8"))
            key = f"{name}/deployment.zip"  # what `aws cloudformation package` does
            s3.upload_file(str(out / name / "deployment.zip"), BUCKET, key)
            for resource in template["Resources"].values():
                if resource["Type"] == "AWS::Serverless::Function":
                    resource["Properties"]["CodeUri"] = f"s3://{BUCKET}/{key}"
            if "RestAPI" in template["Resources"]:
                paths = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
                self.routes[name] = {(m.upper(), p) for p, item in paths.items() for m in item}
            values = {k: ",".join(map(str, v)) if isinstance(v, list) else str(v) for k, v in params[name].items()}
            transformed = transform(template, values, ManagedPolicyLoader(self.client("iam")))
            self._create_stack(cfn, stage_stack(ENV, name), transformed, params[name])
            self._check_template(name, transformed)
        apigateway = self.client("apigateway")
        for deployment in deployments(ENV, self.outputs, params_dir=self.params_dir):
            check_functions(self.report, lambda_, deployment, path="package")
            if deployment.api is not None:
                api = rest_api(apigateway, deployment.api.name)
                if self.report.check(f"package: one REST API named {deployment.api.name}", api is not None) and api:
                    check_api_routes(self.report, apigateway, api, self.routes[deployment.stage], "package")
        refusal = _refusal(refuse_chalice_deploy, cfn, lambda_)
        self.report.check("package: the guard refuses chalice deploy while the stage stacks exist", refusal is not None)
        for name in reversed(STAGE_NAMES):
            cfn.delete_stack(StackName=stage_stack(ENV, name))
        left = [f["FunctionName"] for f in lambda_.list_functions()["Functions"]]
        apis = [a["name"] for a in self.client("apigateway").get_rest_apis()["items"]]
        self.report.check(
            "package: deleting the stage stacks removes their functions and APIs", not left and not apis, (left, apis)
        )

    def _check_template(self, name: str, transformed: dict[str, Any]) -> None:
        """What moto's CloudFormation drops, as the template it received carries it."""
        (deployment,) = deployments(ENV, self.outputs, (name,), self.params_dir)
        context, _ = stage_context(name, ENV, self.outputs, self.params_dir)
        for function in deployment.functions:
            props = resolve_value(transformed["Resources"][function.logical_id]["Properties"], context)
            tags = {t["Key"]: t["Value"] for t in props.get("Tags", [])}
            self.report.check(
                f"package: {function.name} template: JSON logs, tracing, tags",
                props.get("LoggingConfig") == function.logging_config
                and props.get("TracingConfig") == {"Mode": "Active"}
                and deployment.tags.items() <= tags.items(),
                (props.get("LoggingConfig"), props.get("TracingConfig"), tags),
            )

    # -- 4. the chalice deploy path ------------------------------------------------------------

    def chalice_path(self) -> None:
        lambda_, cfn, apigateway = self.client("lambda"), self.client("cloudformation"), self.client("apigateway")
        allowed = _refusal(refuse_chalice_deploy, cfn, lambda_)
        self.report.check(
            "chalice deploy: the guard lets it deploy once the stage stacks are gone", allowed is None, allowed
        )
        project = write_project(ENV, self.outputs, out=self.workdir / "deploy", params_dir=self.params_dir)
        clients = postdeploy.Clients(lambda_, apigateway)
        for deployment in deployments(ENV, self.outputs, params_dir=self.params_dir):
            stage = f"{ENV}-{deployment.stage}"
            self._chalice(project, "deploy", stage)
            self.calls.clear()
            postdeploy.apply(deployment, clients, project, log=self.log)
            check_logging_calls(self.report, self.calls, deployment)
            check_functions(self.report, lambda_, deployment, path="chalice deploy")
            if deployment.api is None:
                continue
            api_id = postdeploy.deployed_rest_api(project, stage)
            first = _api_state(apigateway, api_id)
            postdeploy.apply(deployment, clients, project, log=lambda _: None)
            self.report.check(
                f"chalice deploy: post-deploy of {stage} is idempotent", _api_state(apigateway, api_id) == first
            )
            api = apigateway.get_rest_api(restApiId=api_id)
            self.report.check(
                f"chalice deploy: the REST API is named {deployment.api.name}", api["name"] == deployment.api.name
            )
            check_api_routes(self.report, apigateway, api, self.routes[deployment.stage], "chalice deploy")
            check_api_stage(self.report, apigateway, api_id, deployment)
            policy = json.loads((project / ".chalice" / f"api-policy-{stage}.json").read_text(encoding="utf-8"))
            self.report.check(
                f"chalice deploy: {stage}'s policy file is the allow-list", policy == deployment.api.resource_policy
            )
        refusal = _refusal(refuse_package_deploy, lambda_)
        self.report.check(
            "chalice deploy: the guard refuses the package path while chalice's functions exist", refusal is not None
        )
        for name in reversed(STAGE_NAMES):
            self._chalice(project, "delete", f"{ENV}-{name}")
        left = [f["FunctionName"] for f in lambda_.list_functions()["Functions"]]
        apis = [a["name"] for a in apigateway.get_rest_apis()["items"]]
        self.report.check("chalice delete: no function and no REST API left", not left and not apis, (left, apis))

    def _chalice(self, project: Path, command: str, stage: str) -> None:
        argv = [str(CHALICE), "--project-dir", str(project), command, "--stage", stage]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
        self.log(f"chalice {command} --stage {stage}: exit {result.returncode}")
        if result.returncode != 0:
            raise RuntimeError(f"chalice {command} --stage {stage} failed:\n{result.stdout}\n{result.stderr}")

    # -- 5. teardown -------------------------------------------------------------------------

    def teardown(self) -> None:
        cfn, ddb, kms = self.client("cloudformation"), self.client("dynamodb"), self.client("kms")
        cfn.delete_stack(StackName=f"pii-vault-{ENV}-exports")
        cfn.delete_stack(StackName=base_stack(ENV))
        tables = set(ddb.list_tables()["TableNames"])
        retained = {s.output for s in TABLES.values() if s.protected}
        kept = {s.output for s in TABLES.values() if self.outputs[s.output] in tables}
        self.report.check("teardown: the base stack retains exactly the protected tables", kept == retained, kept)
        # (DescribeKey fails on moto for a key its CloudFormation made: it keeps the policy as an object.)
        listed = {k["KeyArn"] for k in kms.list_keys()["Keys"]}
        keys = {s.output for s in KEYS.values() if self.outputs[s.output] in listed}
        self.report.check(
            "teardown: the base stack retains its KMS keys", keys == {s.output for s in KEYS.values()}, keys
        )
        left = sorted(self.outputs[o] for o in (*sorted(kept), *sorted(keys)))
        self.log("retained (delete by hand, docs/deploy.md): " + ", ".join(left))


def _refusal(guard: Any, *args: Any) -> str | None:
    try:
        guard(*args, ENV)
    except GuardError as exc:
        return str(exc)
    return None


def _api_state(apigateway: Any, api_id: str) -> str:
    state = {
        "api": apigateway.get_rest_api(restApiId=api_id),
        "stage": apigateway.get_stage(restApiId=api_id, stageName="api"),
        "responses": apigateway.get_gateway_responses(restApiId=api_id)["items"],
    }
    for part in state.values():
        if isinstance(part, dict):
            part.pop("ResponseMetadata", None)
            part.pop("deploymentId", None)  # the step publishes the gateway responses: a new deployment
            part.pop("lastUpdatedDate", None)
    return json.dumps(state, default=str, sort_keys=True)


@contextmanager
def moto_server(log_path: Path) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tools.rehearsal_moto", "-p", str(port)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "/moto-api/", timeout=1).close()  # nosec B310  # noqa: S310
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the rehearsal's moto did not start: {log_path.read_text()[-2000:]}") from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.rehearse", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it (default: a temporary one)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="pii-vault-rehearsal-"))
    workdir.mkdir(parents=True, exist_ok=True)
    report = Report(log=lambda line: print(f"[{time.monotonic() - started:6.1f}s] {line}", flush=True))
    try:
        with moto_server(workdir / "moto.log") as url:
            os.environ.update(FAKE_CREDENTIALS)
            os.environ.update(AWS_DEFAULT_REGION=REGION, AWS_REGION=REGION, AWS_ENDPOINT_URL=url)
            os.environ["AWS_ACCOUNT_ID_ENDPOINT_MODE"] = "disabled"  # DynamoDB (and its streams) on moto
            os.environ.pop("AWS_PROFILE", None)
            rehearsal = Rehearsal(workdir, report)
            for step in (rehearsal.base, rehearsal.package_path, rehearsal.chalice_path, rehearsal.teardown):
                report.log(f"== {step.__name__}")
                step()
    except Exception as exc:  # noqa: BLE001 - a step that cannot go on is one more failure, reported
        report.failed.append(f"{type(exc).__name__}: {exc}")
        report.log(f"STOPPED: {type(exc).__name__}: {exc}")
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print("\nWhat moto does not check here:\n" + "\n".join(f"  - {line}" for line in NOT_CHECKED))
    elapsed = time.monotonic() - started
    print(f"\nrehearsal: {report.passed} passed, {len(report.failed)} failed in {elapsed:.0f} s")
    for label in report.failed:
        print(f"  FAILED: {label}")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
