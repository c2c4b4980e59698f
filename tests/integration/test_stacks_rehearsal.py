"""Offline rehearsal of a deployment: the base stack created by moto's CloudFormation from
the generated template, then the stages wired to its outputs exactly as their merge
templates wire them, serving a write and a read, and a search found through the indexer
fed by the created table's stream, then offboarding.

Where moto cannot follow, the test says so and checks the wiring itself:
- moto validates export names before it creates any resource and cannot resolve
  ``!GetAtt`` then, so the stack is created without ``Export`` (the export names are
  checked against the stages' ``!ImportValue``s by tests/unit/test_stacks.py);
- moto's CloudFormation passes ``AWS::KMS::Key`` tags in the CloudFormation shape
  (Key/Value) to a KMS backend that expects TagKey/TagValue, so the keys' tags are dropped;
- moto's CloudFormation creates every ``AWS::KMS::Key`` as SYMMETRIC_DEFAULT / ENCRYPT_DECRYPT,
  ignoring ``KeySpec`` and ``KeyUsage``: the fleet and beacon HMAC keys' HMAC_256 / GENERATE_VERIFY_MAC
  is checked on the template (here and in tests/unit/test_stacks.py), and the created keys are then
  given that spec in moto's backend so that GenerateMac (fleet path, beacons) runs;
- moto's GenerateMac answers with the bare key id where KMS answers with the key ARN, which
  the reader (pinned by ARN, chalicelib.keys.kms) refuses: the rehearsal answers with the ARN;
- moto's CloudFormation ignores ``TimeToLiveSpecification`` (the fleet and idempotency tables'
  TTL is checked on the template);
- moto's CloudFormation stores the key policy unserialised (GetKeyPolicy then fails; the
  test reads moto's KMS backend);
- moto's CloudFormation ignores ``PointInTimeRecoverySpecification`` (checked on the template);
- moto does not create metric filters, alarms or ``AWS::ApiGateway::Account``, and does not
  enforce key policies or scoped IAM policies (tests/policy_eval.py covers those), and it
  runs no SAM transform, so the stage stacks themselves are not created here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.kms.models import kms_backends

from chalicelib.api import functions as job_functions
from chalicelib.stages import API_STAGES, JOB_STAGES, STAGES, settings_for, stage
from chalicelib.stages.app import create_app
from chalicelib.store import fleet_table, layout
from chalicelib.support.environment import Key, Table
from infra.arns import AccountArns
from infra.base import base_template
from infra.environment import resolve
from infra.iam import key_policy, stage_policy, tracing_policy
from infra.package import ROOT
from infra.specs import KEYS, TABLES
from tests.integration.conftest import api_gateway_event, stage_client
from tests.request_proof import PROOF, operator_code
from tools.recorder import principals

# moto warns for each resource type its CloudFormation does not create (alarms, metric filters, ...).
pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore:Tried to parse:UserWarning")]

REGION = "us-east-1"
ENV = "rehearsal"
CALLER = "arn:aws:iam::123456789012:role/app-backend"


def _moto_compatible(template: dict[str, Any]) -> dict[str, Any]:
    template = json.loads(json.dumps(template))
    for output in template["Outputs"].values():
        output.pop("Export")
    for key in ("Key", "FleetMacKey", "BeaconKey"):
        template["Resources"][key]["Properties"].pop("Tags")
    return template


def _as_declared(key_id: str, template: dict[str, Any], resource: str = "FleetMacKey") -> None:
    """Give moto's key the spec the template declares (moto's CloudFormation ignores it)."""
    props = template["Resources"][resource]["Properties"]
    key = kms_backends["123456789012"][REGION].keys[key_id]
    assert (key.key_spec, key.key_usage) == ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT"), "moto learnt KeySpec: drop this"
    key.key_spec, key.key_usage = props["KeySpec"], props["KeyUsage"]


@pytest.fixture
def base_stack(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    with mock_aws():
        iam = boto3.client("iam", region_name=REGION)
        admin = iam.create_role(RoleName="pii-vault-admin", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        cfn = boto3.client("cloudformation", region_name=REGION)
        template = base_template().render()
        cfn.create_stack(
            StackName=f"pii-vault-{ENV}-base",
            TemplateBody=json.dumps(_moto_compatible(template)),
            Parameters=[
                {"ParameterKey": "Environment", "ParameterValue": ENV},
                {"ParameterKey": "KeyAdminArn", "ParameterValue": admin},
            ],
            Capabilities=["CAPABILITY_IAM"],
        )
        (stack,) = cfn.describe_stacks(StackName=f"pii-vault-{ENV}-base")["Stacks"]
        assert stack["StackStatus"] == "CREATE_COMPLETE"
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
        _as_declared(outputs["FleetMacKeyArn"].rsplit("/", 1)[1], template)
        _as_declared(outputs["BeaconKeyArn"].rsplit("/", 1)[1], template, "BeaconKey")
        yield {"admin": admin, "outputs": outputs}


def test_given_the_base_template_on_moto_then_the_key_policy_names_the_roles_it_created(
    base_stack: dict[str, Any],
) -> None:
    outputs = base_stack["outputs"]
    kms = boto3.client("kms", region_name=REGION)

    # moto's CloudFormation stores the KeyPolicy object unserialised, and its GetKeyPolicy then
    # fails to parse it: read what the stack installed from moto's KMS backend instead.
    def installed(key_arn: str) -> Any:
        policy = kms_backends["123456789012"][REGION].keys[key_arn.rsplit("/", 1)[1]].policy
        return json.loads(policy) if isinstance(policy, str) else policy

    admin = base_stack["admin"]
    roles = {entry.name: outputs[f"{entry.name.capitalize()}RoleArn"] for entry in STAGES}
    for key, output in ((Key.DATA, "KeyArn"), (Key.FLEET_MAC, "FleetMacKeyArn"), (Key.BEACON_MAC, "BeaconKeyArn")):
        assert installed(outputs[output]) == key_policy(key, admin, roles), key
    assert kms.get_key_rotation_status(KeyId=outputs["KeyArn"])["KeyRotationEnabled"] is True
    aliases = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]}
    assert aliases[f"alias/pii-vault-{ENV}"] == outputs["KeyArn"].rsplit("/", 1)[1]
    assert aliases[f"alias/pii-vault-{ENV}-fleet"] == outputs["FleetMacKeyArn"].rsplit("/", 1)[1]
    assert aliases[f"alias/pii-vault-{ENV}-beacon"] == outputs["BeaconKeyArn"].rsplit("/", 1)[1]


def test_given_the_base_template_on_moto_then_the_tables_are_on_demand_and_protected(
    base_stack: dict[str, Any],
) -> None:
    """(moto's CloudFormation ignores PointInTimeRecoverySpecification: PITR is checked on the
    template in tests/unit/test_stacks.py.)"""
    ddb = boto3.client("dynamodb", region_name=REGION)
    outputs = base_stack["outputs"]

    for name in (outputs["TableName"], outputs["IdempotencyTableName"], outputs["KeysTableName"]):
        table = ddb.describe_table(TableName=name)["Table"]
        assert table["DeletionProtectionEnabled"] is True
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert outputs["TableName"] == f"pii-vault-{ENV}"
    # The fleet key table: on demand, keyed as chalicelib.store.fleet_table reads it, not protected.
    fleet = ddb.describe_table(TableName=outputs["FleetTableName"])["Table"]
    assert outputs["FleetTableName"] == f"pii-vault-{ENV}-fleet"
    assert fleet["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert fleet["KeySchema"] == TABLES[Table.FLEET].key_schema()  # a day bucket + a key reference
    assert fleet["DeletionProtectionEnabled"] is False
    # The beacon table: derived data, rebuilt by the backfill; its index is the reader's search.
    beacons = ddb.describe_table(TableName=outputs["BeaconsTableName"])["Table"]
    assert beacons["DeletionProtectionEnabled"] is False
    assert [i["IndexName"] for i in beacons["GlobalSecondaryIndexes"]] == [layout.BEACON_INDEX]
    assert not ddb.describe_table(TableName=outputs["TableName"])["Table"].get("GlobalSecondaryIndexes")


def test_given_the_base_template_on_moto_then_each_role_holds_the_generator_policy_for_the_created_arns(
    base_stack: dict[str, Any],
) -> None:
    iam = boto3.client("iam", region_name=REGION)
    ddb = boto3.client("dynamodb", region_name=REGION)
    outputs = base_stack["outputs"]
    keys = {Key.DATA: "KeyArn", Key.FLEET_MAC: "FleetMacKeyArn", Key.BEACON_MAC: "BeaconKeyArn"}
    arns = AccountArns(
        {key: outputs[output] for key, output in keys.items()},
        {t: ddb.describe_table(TableName=outputs[spec.output])["Table"]["TableArn"] for t, spec in TABLES.items()},
        functions=f"pii-vault-{ENV}",  # the environment's functions: pii-vault-<env>-<stage>[-<job function>]
    )
    for entry in STAGES:
        role = outputs[f"{entry.name.capitalize()}RoleArn"].rsplit("/", 1)[1]
        names = iam.list_role_policies(RoleName=role)["PolicyNames"]
        documents = {n: iam.get_role_policy(RoleName=role, PolicyName=n)["PolicyDocument"] for n in names}
        documents = {n: json.loads(d) if isinstance(d, str) else d for n, d in documents.items()}

        assert sorted(documents.values(), key=json.dumps) == sorted(
            [stage_policy(entry.name, arns), tracing_policy()], key=json.dumps
        ), entry.name


def _environment(stage_name: str, outputs: dict[str, str], callers: list[str]) -> dict[str, str]:
    """A function's environment as CloudFormation would resolve the packaged template: chalice's
    stage variables (.chalice/config.json) under the merge template's (infra.environment)."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text(encoding="utf-8"))
    env = {**config.get("environment_variables", {}), **config["stages"][stage_name]["environment_variables"]}
    env.update(resolve(stage(stage_name), outputs, {"AllowedCallers": callers}))
    return {**env, "AWS_LAMBDA_FUNCTION_NAME": f"pii-vault-{ENV}-{stage_name}", "AWS_REGION": REGION}


def _app(stage_name: str, env: dict[str, str]) -> Any:
    """A stage's app on clients signing as that stage, as its role signs on AWS."""
    return create_app(
        settings=settings_for(env),
        kms_client=stage_client(stage_name, "kms"),
        dynamodb_client=stage_client(stage_name, "dynamodb"),
    )


def _apps(envs: dict[str, dict[str, str]], outputs: dict[str, str]) -> dict[str, Any]:
    """Each stage's app (``_app``); the stack's keys named for the request proof (their aliases
    carry the environment, so the proof cannot tell them by alias)."""
    for key, spec in KEYS.items():
        if spec.output in outputs:
            PROOF.register_key(outputs[spec.output], key)
    return {name: _app(name, env) for name, env in envs.items()}


def _invoke(app: Any, method: str, resource: str, params: dict[str, str], caller: str, body: Any = None) -> Any:
    """The function as API Gateway invokes it after the IAM authorizer accepted ``caller``."""
    event = api_gateway_event(method, resource, resource.format(**params), params)
    event["requestContext"]["identity"]["userArn"] = caller
    if body is not None:
        headers = {"content-type": "application/json", "idempotency-key": "6a1d3c52-7f0e-4b8a-9d21-5e4c3b2a1f00"}
        event["headers"], event["multiValueHeaders"] = headers, {k: [v] for k, v in headers.items()}
        event["body"] = json.dumps(body)
    return app(event, None)


def test_given_both_stages_wired_to_the_base_outputs_then_a_listed_caller_writes_and_reads_back(
    base_stack: dict[str, Any],
) -> None:
    outputs = base_stack["outputs"]
    envs = {entry.name: _environment(entry.name, outputs, [CALLER]) for entry in API_STAGES}
    # As in Lambda: the key pinned by ARN (an alias would be refused at start).
    assert envs["writer"]["PII_VAULT_KMS_KEY_ID"] == envs["reader"]["PII_VAULT_KMS_KEY_ID"] == outputs["KeyArn"]
    assert envs["writer"]["PII_VAULT_ALLOWED_CALLERS"] == CALLER
    assert envs["reader"]["PII_VAULT_FLEET_MAC_KEY_ID"] == outputs["FleetMacKeyArn"]
    assert envs["reader"]["PII_VAULT_FLEET_TABLE"] == outputs["FleetTableName"]
    apps = _apps(envs, outputs)
    session = CALLER.replace(":iam::", ":sts::").replace(":role/", ":assumed-role/") + "/rehearsal"
    person = {
        "name": "Grace",
        "surname": "Hopper",
        "email": "grace@example.com",
        "dob": "1906-12-09",
        "address": {"line1": "1 Harbour St", "city": "London", "postal_code": "E1 6AN", "country": "GB"},
    }

    created = _invoke(
        apps["writer"], "POST", "/customers/{customer_id}/people", {"customer_id": "acme"}, session, person
    )
    assert created["statusCode"] == 201, created["body"]
    person_id = json.loads(created["body"])["id"]
    path, params = "/customers/{customer_id}/people/{person_id}", {"customer_id": "acme", "person_id": person_id}
    read = _invoke(apps["reader"], "GET", path, params, session)
    stranger = _invoke(
        apps["reader"], "GET", path, params, "arn:aws:sts::123456789012:assumed-role/someone-else/rehearsal"
    )

    assert read["statusCode"] == 200, read["body"]
    assert json.loads(read["body"])["data"]["email"] == person["email"]
    assert stranger["statusCode"] == 404  # a refused caller is answered as an unknown route
    ddb = boto3.client("dynamodb", region_name=REGION)
    assert ddb.scan(TableName=outputs["TableName"])["Items"]
    # The read went through the fleet key table: the pool data key, sealed, with its TTL attribute.
    (entry,) = ddb.scan(TableName=outputs["FleetTableName"])["Items"]
    # (Format v3: filed by the day the key was made and its reference; the expiry is the TTL attribute.)
    assert set(entry) == {
        fleet_table.BUCKET,
        fleet_table.REFERENCE,
        fleet_table.EPOCH,
        fleet_table.EXPIRES_AT,
        fleet_table.SEALED,
    }
    assert envs["writer"].get("PII_VAULT_KEY_SCOPE", "pool") == "pool"


PERSON = {
    "name": "Grace",
    "surname": "Hopper",
    "email": "grace@example.com",
    "dob": "1906-12-09",
    "address": {"line1": "1 Harbour St", "city": "London", "postal_code": "E1 6AN", "country": "GB"},
}


def test_given_a_tenant_with_its_own_key_then_the_deployed_masked_stage_reads_its_records(
    base_stack: dict[str, Any],
) -> None:
    """The deploy-only bug of issue 20: the masked template lacked PII_VAULT_TENANTS_TABLE, so the
    deployed masked stage opened tenant-keyed records through the shared key and answered 502.
    Its environment now names the registry (from the settings it reads), and the read succeeds."""
    from tools import tenants

    outputs = base_stack["outputs"]
    envs = {entry.name: _environment(entry.name, outputs, [CALLER]) for entry in API_STAGES}
    assert envs["masked"]["PII_VAULT_TENANTS_TABLE"] == outputs["TenantsTableName"]
    kms, ddb = boto3.client("kms", region_name=REGION), boto3.client("dynamodb", region_name=REGION)
    with operator_code("tools.tenants onboard: the operator files a tenant's own key"):
        tenants.onboard(kms, ddb, settings_for(envs["writer"]), "acme-own")
    apps = _apps(envs, outputs)
    session = CALLER.replace(":iam::", ":sts::").replace(":role/", ":assumed-role/") + "/rehearsal"
    created = _invoke(
        apps["writer"], "POST", "/customers/{customer_id}/people", {"customer_id": "acme-own"}, session, PERSON
    )
    assert created["statusCode"] == 201, created["body"]
    path = "/customers/{customer_id}/people/{person_id}"
    params = {"customer_id": "acme-own", "person_id": json.loads(created["body"])["id"]}

    masked = _invoke(apps["masked"], "GET", path, params, session)

    assert masked["statusCode"] == 200, masked["body"]
    assert json.loads(masked["body"])["data"]["email"] == "g***@example.com"
    # Without the registry (the environment the old template gave): the shared key cannot open it.
    without = {k: v for k, v in envs["masked"].items() if k != "PII_VAULT_TENANTS_TABLE"}
    old = _invoke(_app("masked", without), "GET", path, params, session)
    assert old["statusCode"] == 502 and json.loads(old["body"])["code"] == "kms_error"


def test_given_every_stage_wired_to_the_base_outputs_then_a_written_person_is_found_by_email_and_offboarded(
    base_stack: dict[str, Any],
) -> None:
    """What a deployed search needs, end to end: the table's stream (created by the base stack,
    read as the indexer's event source mapping would deliver it) feeds the indexer stage,
    which writes the beacon (beacon key) into the beacon table; the reader computes the search
    beacon with the same key and queries that table's index. Then the offboard stage deletes the tenant."""
    from chalice.test import Client

    from tests.integration.test_jobs import _lambda_event
    from tools.streampoll import streams_client

    outputs = base_stack["outputs"]
    ddb = boto3.client("dynamodb", region_name=REGION)
    table = ddb.describe_table(TableName=outputs["TableName"])["Table"]
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"}
    assert table["LatestStreamArn"] == outputs["TableStreamArn"]
    assert not table.get("GlobalSecondaryIndexes")
    (index,) = ddb.describe_table(TableName=outputs["BeaconsTableName"])["Table"]["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "beacon-index" and index["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    envs = {entry.name: _environment(entry.name, outputs, [CALLER]) for entry in (*API_STAGES, *JOB_STAGES)}
    assert envs["reader"]["PII_VAULT_BEACON_KEY_ID"] == envs["indexer"]["PII_VAULT_BEACON_KEY_ID"]
    assert envs["indexer"]["PII_VAULT_STREAM_ARN"] == outputs["TableStreamArn"]
    # Settings.from_env refuses an alias (data or beacon key) in a deployed function: these start.
    apps = _apps(envs, outputs)
    session = CALLER.replace(":iam::", ":sts::").replace(":role/", ":assumed-role/") + "/rehearsal"
    person = {
        "name": "Ada",
        "surname": "Lovelace",
        "email": "ada@Example.com",
        "dob": "1985-12-10",
        "address": {"line1": "12 St James's Sq", "city": "London", "postal_code": "SW1Y 4JH", "country": "GB"},
    }
    created = _invoke(
        apps["writer"], "POST", "/customers/{customer_id}/people", {"customer_id": "acme"}, session, person
    )
    assert created["statusCode"] == 201, created["body"]
    person_id = json.loads(created["body"])["id"]

    def search() -> list[str]:
        answer = _invoke(
            apps["reader"],
            "POST",
            "/customers/{customer_id}/people/search",
            {"customer_id": "acme"},
            session,
            {"email": "ada@example.com"},
        )
        assert answer["statusCode"] == 200, answer["body"]
        return [item["id"] for item in json.loads(answer["body"])["items"]]

    assert search() == []  # eventually consistent: nothing indexed yet
    streams = streams_client(principals.stage_session("indexer", REGION))  # as its event source mapping
    arn = outputs["TableStreamArn"]
    (shard,) = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")
    records = streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
    with Client(apps["indexer"]) as client:
        client.lambda_.invoke(job_functions.STREAM_FUNCTION, _lambda_event(records))

    assert search() == [person_id]
    with Client(apps["offboard"]) as client:
        event = {"job": "rehearsal", "customer_id": "acme", "segment": 0, "total_segments": 1}
        report = client.lambda_.invoke(job_functions.OFFBOARD_FUNCTION, event).payload
    assert report["done"], report
    assert search() == []
    kinds = sorted(i["kind"]["S"] for i in ddb.scan(TableName=outputs["LedgerTableName"])["Items"])
    assert kinds == ["tenant", "tenant_done"]  # the erasure, and the tenant found empty
