"""The generated CloudFormation (infra/): what each template promises, checked on the
documents themselves. Packaging (chalice) and the moto rehearsal are integration tests."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest

from chalicelib.api.http import guarded
from chalicelib.stages import API_STAGES, JOB_STAGES, STAGES
from chalicelib.stages import stage as registry_stage
from chalicelib.store import layout
from chalicelib.support import errors
from chalicelib.support.config import default_text
from chalicelib.support.environment import Key, Table
from infra.base import base_template
from infra.cfn import TemplateError
from infra.dashboard import dashboard_body
from infra.environment import tunable_parameter, tunable_settings
from infra.iam import key_policy, stage_policy
from infra.iam.callers import api_resource_policy
from infra.merge import merge_template
from infra.observability import (
    ACCESS_LOG_FORMAT,
    ERROR_CODES,
    error_filter_pattern,
    fleet_integrity_filter_pattern,
    indexer_integrity_filter_pattern,
    indexer_skipped_filter_pattern,
)
from infra.package import ROOT, write_templates
from infra.params import DEFAULT_LOG_RETENTION_DAYS, load_params, parameter_overrides
from infra.specs import TABLES
from tests.arns import account_arns

pytestmark = pytest.mark.unit

ACCOUNT, REGION = "123456789012", "eu-west-1"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0f6c2a1e-8b3d-4c7a-9e52-7d1b4a6f3c80"
FLEET_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/9d3e2c1b-4a5f-4e6d-8c7b-0a1b2c3d4e5f"
BEACON_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/5b7c9d1e-2f3a-4b5c-8d6e-7f8091a2b3c4"
ROLES = {
    "WriterRole": f"arn:aws:iam::{ACCOUNT}:role/w",
    "ReaderRole": f"arn:aws:iam::{ACCOUNT}:role/r",
    "MaskedRole": f"arn:aws:iam::{ACCOUNT}:role/m",
    "IndexerRole": f"arn:aws:iam::{ACCOUNT}:role/i",
    "OffboardRole": f"arn:aws:iam::{ACCOUNT}:role/o",
    "RewrapRole": f"arn:aws:iam::{ACCOUNT}:role/rw",
}
ADMIN = f"arn:aws:iam::{ACCOUNT}:role/pii-vault-admin"


def resolve(value: Any, env: str = "dev") -> Any:
    """Evaluate the intrinsics the base template uses, for account ACCOUNT in REGION."""
    attrs = {
        "Key": KEY,
        "FleetMacKey": FLEET_KEY,
        "BeaconKey": BEACON_KEY,
        **ROLES,
        "PiiTable": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/pii-vault-{env}",
        "IdempotencyTable": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/pii-vault-{env}-idempotency",
        "FleetKeyTable": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/pii-vault-{env}-fleet",
        "ErasureLedgerTable": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/pii-vault-{env}-erasures",
        "JobsTable": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/pii-vault-{env}-jobs",
        "KeyTable": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/pii-vault-{env}-keys",
        "BeaconTable": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/pii-vault-{env}-beacons",
        "TenantsTable": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/pii-vault-{env}-tenants",
        "IndexerFailureQueue": f"arn:aws:sqs:{REGION}:{ACCOUNT}:pii-vault-{env}-indexer-failures",
    }
    refs = {"KeyAdminArn": ADMIN, "Environment": env, "AWS::AccountId": ACCOUNT}
    pseudo = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "Environment": env}
    pseudo.update({f"{name}.Arn": arn for name, arn in attrs.items()})
    if isinstance(value, list):
        return [resolve(v, env) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Fn::GetAtt"}:
        return attrs[value["Fn::GetAtt"][0]]
    if set(value) == {"Ref"}:
        return refs[value["Ref"]]
    if set(value) == {"Fn::Sub"}:
        return re.sub(r"\$\{([^}]+)\}", lambda m: pseudo[m.group(1)], value["Fn::Sub"])
    return {k: resolve(v, env) for k, v in value.items()}


API_STAGE_NAMES = [s.name for s in API_STAGES]
STAGE_NAMES = [s.name for s in STAGES]
STAGE_ROLES = {name: ROLES[f"{name.capitalize()}Role"] for name in STAGE_NAMES}


def merge(stage_name: str) -> dict[str, Any]:
    return merge_template(stage_name).render()


@pytest.fixture(scope="module")
def base() -> dict[str, Any]:
    return base_template().render()


def test_given_the_base_template_then_the_key_policy_names_this_stack_roles_and_the_admin_parameter(
    base: dict[str, Any],
) -> None:
    key = base["Resources"]["Key"]
    statements = key["Properties"]["KeyPolicy"]["Statement"]

    writer, reader = {"Fn::GetAtt": ["WriterRole", "Arn"]}, {"Fn::GetAtt": ["ReaderRole", "Arn"]}
    indexer = {"Fn::GetAtt": ["IndexerRole", "Arn"]}
    masked = {"Fn::GetAtt": ["MaskedRole", "Arn"]}
    # One statement per encryption context and role. The writer: tenant, pool and both
    # masked-view contexts; reader, indexer (it decrypts emails) and masked stage: two each.
    assert [s["Principal"]["AWS"] for s in statements] == [
        {"Ref": "KeyAdminArn"},
        *[writer] * 4,
        reader,
        reader,
        indexer,
        indexer,
        masked,
        masked,
        *[{"Fn::GetAtt": ["RewrapRole", "Arn"]}] * 8,  # ReEncryptFrom/To, tenant and pool contexts, both views
    ]
    assert resolve(key["Properties"]["KeyPolicy"]) == key_policy(Key.DATA, ADMIN, STAGE_ROLES)
    assert key["Properties"]["EnableKeyRotation"] is True
    assert (key["DeletionPolicy"], key["UpdateReplacePolicy"]) == ("Retain", "Retain")


def test_given_the_base_template_then_each_role_holds_exactly_the_generator_policy_for_this_environment(
    base: dict[str, Any],
) -> None:
    """The stack's intrinsics (infra.arns.StackArns), resolved for one account, give exactly the
    policy generated for that account's ARNs (AccountArns): the two renderings agree."""
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/pii-vault-dev"
    arns = account_arns(KEY, table, fleet_mac_key_arn=FLEET_KEY, beacon_key_arn=BEACON_KEY, functions="pii-vault-dev")
    groups = {
        r["Properties"]["LogGroupName"]["Fn::Sub"]
        for r in base["Resources"].values()
        if r["Type"] == "AWS::Logs::LogGroup"
    }
    for name in STAGE_NAMES:
        title = name.capitalize()
        policy = base["Resources"][f"{title}Policy"]
        deployed = resolve(policy["Properties"]["PolicyDocument"])

        assert deployed == stage_policy(name, arns)
        assert policy["Properties"]["Roles"] == [{"Ref": f"{title}Role"}]
        # Each function's log group, pii-vault-dev-<stage>[-<function>], is a group of this stack.
        for statement in deployed["Statement"]:
            if statement["Sid"].startswith("WriteOwnLogs"):
                group = statement["Resource"][0].split(":log-group:")[1]
                assert group.replace("pii-vault-dev-", "pii-vault-${Environment}-") in groups
    assert base["Resources"]["WriterLogGroup"]["Properties"]["LogGroupName"] == {
        "Fn::Sub": "/aws/lambda/pii-vault-${Environment}-writer"
    }


def test_given_the_base_template_then_both_tables_are_on_demand_recoverable_protected_and_retained(
    base: dict[str, Any],
) -> None:
    for name in ("PiiTable", "IdempotencyTable"):
        table = base["Resources"][name]
        props = table["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert props["DeletionProtectionEnabled"] is True
        assert (table["DeletionPolicy"], table["UpdateReplacePolicy"]) == ("Retain", "Retain")


def test_given_the_base_template_then_the_fleet_mac_key_is_hmac_used_by_the_reader_only(base: dict[str, Any]) -> None:
    key = base["Resources"]["FleetMacKey"]
    props = key["Properties"]

    assert (props["KeySpec"], props["KeyUsage"]) == ("HMAC_256", "GENERATE_VERIFY_MAC")
    assert "EnableKeyRotation" not in props  # KMS has no automatic rotation for HMAC keys
    assert resolve(props["KeyPolicy"]) == key_policy(Key.FLEET_MAC, ADMIN, STAGE_ROLES)
    assert [s["Principal"]["AWS"] for s in props["KeyPolicy"]["Statement"]] == [
        {"Ref": "KeyAdminArn"},
        {"Fn::GetAtt": ["ReaderRole", "Arn"]},
    ]
    assert base["Resources"]["FleetMacKeyAlias"]["Properties"] == {
        "AliasName": {"Fn::Sub": "alias/pii-vault-${Environment}-fleet"},
        "TargetKeyId": {"Ref": "FleetMacKey"},
    }
    # The rotation skip is this key's alone: the data key rotates and is checked.
    skipped = {s["id"]: s["comment"] for s in key["Metadata"]["checkov"]["skip"]}
    assert set(skipped) == {"CKV_AWS_7"} and "HMAC" in skipped["CKV_AWS_7"]
    assert "Metadata" not in base["Resources"]["Key"]


def test_given_the_base_template_then_the_fleet_table_is_on_demand_expiring_and_deliberately_without_backups(
    base: dict[str, Any],
) -> None:
    from chalicelib.store import fleet_table

    table = base["Resources"]["FleetKeyTable"]
    props = table["Properties"]
    spec = TABLES[Table.FLEET]

    assert props["BillingMode"] == "PAY_PER_REQUEST"
    # A day bucket (partition) of sealed entries by key reference (sort): one Query per day.
    schema = [
        {"AttributeName": fleet_table.BUCKET, "KeyType": "HASH"},
        {"AttributeName": fleet_table.REFERENCE, "KeyType": "RANGE"},
    ]
    assert props["KeySchema"] == schema == spec.key_schema()
    assert props["AttributeDefinitions"] == [
        {"AttributeName": fleet_table.BUCKET, "AttributeType": "S"},
        {"AttributeName": fleet_table.REFERENCE, "AttributeType": "B"},
    ]
    assert props["TimeToLiveSpecification"] == {"AttributeName": fleet_table.TTL, "Enabled": True}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": False}
    assert "DeletionProtectionEnabled" not in props
    assert (table["DeletionPolicy"], table["UpdateReplacePolicy"]) == ("Delete", "Delete")
    assert resolve(props["TableName"]) == "pii-vault-dev-fleet"
    skipped = {s["id"]: s["comment"] for s in table["Metadata"]["checkov"]["skip"]}
    assert "expiring" in skipped["CKV_AWS_28"]
    # The other tables keep their backups: the PITR skip is the fleet table's alone.
    for name in ("PiiTable", "IdempotencyTable"):
        assert "CKV_AWS_28" not in {s["id"] for s in base["Resources"][name]["Metadata"]["checkov"]["skip"]}


def test_given_the_base_template_then_only_the_reader_role_policy_names_the_fleet_key_and_table(
    base: dict[str, Any],
) -> None:
    def names(value: Any) -> set[str]:
        found: set[str] = set()
        if isinstance(value, dict):
            if "Fn::GetAtt" in value:
                found.add(value["Fn::GetAtt"][0])
            for v in value.values():
                found |= names(v)
        elif isinstance(value, list):
            for v in value:
                found |= names(v)
        return found

    fleet = {"FleetMacKey", "FleetKeyTable"}
    # The writer's policy, the data key's policy and everything else: no GetAtt of either.
    assert {n for n, r in base["Resources"].items() if fleet & names(r)} == {"ReaderPolicy"}
    assert names(base["Resources"]["ReaderPolicy"]) >= fleet
    assert base["Outputs"]["FleetMacKeyArn"]["Value"] == {"Fn::GetAtt": ["FleetMacKey", "Arn"]}
    assert base["Outputs"]["FleetTableName"]["Value"] == {"Ref": "FleetKeyTable"}


def test_given_the_base_template_then_every_log_group_expires_after_the_retention_parameter(
    base: dict[str, Any],
) -> None:
    groups = [r for r in base["Resources"].values() if r["Type"] == "AWS::Logs::LogGroup"]

    # function and API access logs per API stage; indexer (stream + backfill), offboard, rewrap
    assert len(groups) == 2 * len(API_STAGES) + sum(len(s.functions) for s in JOB_STAGES)
    assert all(g["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"} for g in groups)
    assert base["Parameters"]["LogRetentionDays"]["Default"] == DEFAULT_LOG_RETENTION_DAYS == 365


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_given_a_stage_merge_template_then_its_imports_are_exports_of_the_base_stack(
    base: dict[str, Any], stage: str
) -> None:
    exports = {o["Export"]["Name"]["Fn::Sub"] for o in base["Outputs"].values()}
    imports: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if "Fn::ImportValue" in value:
                imports.add(value["Fn::ImportValue"]["Fn::Sub"])
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(merge(stage))

    assert imports and imports <= exports


@pytest.mark.parametrize("stage", API_STAGE_NAMES)
def test_given_a_stage_then_the_allow_list_parameter_feeds_both_the_resource_policy_and_the_function(
    stage: str,
) -> None:
    template = merge(stage)
    function = template["Resources"]["APIHandler"]["Properties"]
    api = template["Resources"]["RestAPI"]["Properties"]

    assert template["Parameters"]["AllowedCallers"]["Type"] == "CommaDelimitedList"
    assert template["Parameters"]["AllowedCallers"]["Default"] == ""
    assert function["Environment"]["Variables"]["PII_VAULT_ALLOWED_CALLERS"] == {
        "Fn::Join": [",", {"Ref": "AllowedCallers"}]
    }
    listed, empty = api["DefinitionBody"]["x-amazon-apigateway-policy"]["Fn::If"][1:]
    assert api["DefinitionBody"]["x-amazon-apigateway-policy"]["Fn::If"][0] == "HasAllowedCallers"
    # infra.iam.callers' document (the one the evaluator proves), its list replaced by the parameter.
    caller = "arn:aws:iam::123456789012:role/app-backend"
    expected = api_resource_policy(stage, [caller])
    (operator,) = expected["Statement"][0]["Condition"]
    expected["Statement"][0]["Condition"][operator]["aws:PrincipalArn"] = {"Ref": "AllowedCallers"}
    assert listed == expected
    assert empty == api_resource_policy(stage, [])


@pytest.mark.parametrize("stage", API_STAGE_NAMES)
def test_given_a_stage_then_operations_settings_are_on_and_caching_off(stage: str) -> None:
    template = merge(stage)
    function = template["Resources"]["APIHandler"]
    api = template["Resources"]["RestAPI"]["Properties"]

    assert function["Properties"]["LoggingConfig"]["LogFormat"] == "JSON"
    assert function["Properties"]["Tracing"] == "Active"
    assert function["Properties"]["ReservedConcurrentExecutions"] == {"Ref": "ReservedConcurrency"}
    assert api["TracingEnabled"] is True and api["CacheClusterEnabled"] is False
    (settings,) = api["MethodSettings"]
    assert settings["CachingEnabled"] is False and settings["DataTraceEnabled"] is False
    assert settings["ThrottlingRateLimit"] == {"Ref": "ThrottlingRateLimit"}
    skipped = {s["id"]: s["comment"] for s in template["Resources"]["RestAPI"]["Metadata"]["checkov"]["skip"]}
    assert "plaintext" in skipped["CKV_AWS_120"]


def test_given_the_reader_merge_template_then_it_passes_the_fleet_table_and_the_mac_key_arn() -> None:
    reader = merge("reader")["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"]
    writer = merge("writer")["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"]

    assert reader["PII_VAULT_FLEET_TABLE"] == {
        "Fn::ImportValue": {"Fn::Sub": "pii-vault-${Environment}-FleetTableName"}
    }
    # The key ARN export (an alias could be re-pointed), as for the data key.
    assert reader["PII_VAULT_FLEET_MAC_KEY_ID"] == {
        "Fn::ImportValue": {"Fn::Sub": "pii-vault-${Environment}-FleetMacKeyArn"}
    }
    assert not {k for k in writer if "FLEET" in k}


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_given_a_stage_then_each_tunable_is_a_parameter_defaulting_to_the_setting_and_to_the_chalice_config(
    stage: str,
) -> None:
    """Every setting that may differ per environment is settable through deploy/params: a stack
    parameter whose default is the setting's (and .chalice/config.json's, for chalice local)."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text(encoding="utf-8"))
    local = {**config.get("environment_variables", {}), **config["stages"][stage]["environment_variables"]}
    template = merge(stage)
    for setting in tunable_settings(registry_stage(stage)):
        name = tunable_parameter(setting)
        declared = template["Parameters"][name]
        assert str(declared["Default"]) == default_text(setting.field)
        if setting.env in local:
            assert local[setting.env] == default_text(setting.field)
        for function in (r for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::Function"):
            variable = function["Properties"]["Environment"]["Variables"][setting.env]
            assert variable in ({"Ref": name}, {"Fn::Join": [",", {"Ref": name}]})


def test_given_the_access_log_format_then_it_is_json_of_ids_status_and_timings_only() -> None:
    fields = set(ACCESS_LOG_FORMAT.values())

    assert "$context.status" in fields and "$context.requestId" in fields
    # No body, no query string, no header values.
    assert not [f for f in fields if re.search(r"requestOverride|querystring|body|header", f, re.I)]
    json.loads(json.dumps(ACCESS_LOG_FORMAT))


def lambda_json_line(record: logging.LogRecord) -> dict[str, Any]:
    """The fields Lambda's JSON log format writes for a Python logging record."""
    return {"level": record.levelname, "message": record.getMessage(), "logger": record.name}


def filter_matches(pattern: str, event: dict[str, Any]) -> bool:
    """CloudWatch JSON filter patterns of the form { ($.a = "x") && ($.b = "y") }."""
    terms = re.findall(r'\$\.(\w+) = "([^"]*)"', pattern)
    assert terms and pattern.count("&&") == len(terms) - 1
    return all(re.fullmatch(re.escape(v).replace(r"\*", ".*"), str(event.get(k, ""))) for k, v in terms)


@pytest.mark.parametrize(
    ("metric", "error"),
    [
        ("IntegrityErrors", errors.IntegrityError),
        ("KmsErrors", errors.KeyServiceError),
        ("StorageErrors", errors.StorageError),
    ],
)
def test_given_an_error_answered_by_the_edge_then_exactly_its_metric_filter_counts_the_log_line(
    caplog: pytest.LogCaptureFixture, metric: str, error: type[errors.PiiVaultError]
) -> None:
    @guarded
    def view() -> Any:
        raise error("boom")

    with caplog.at_level(logging.INFO):
        view()
    events = [lambda_json_line(r) for r in caplog.records if r.levelno >= logging.ERROR]

    assert events
    for name, code in ERROR_CODES.items():
        counted = [e for e in events if filter_matches(error_filter_pattern(code), e)]
        assert bool(counted) == (name == metric), (name, events)


class _ForgedFleetTable:
    """A fleet key table somebody other than the reader wrote: entries the reader must refuse."""

    def __init__(self, entry: dict[str, Any]) -> None:
        self.entry = entry

    def get(self, entry_id: bytes) -> dict[str, Any] | None:
        return self.entry

    def put(self, entry_id: bytes, entry: dict[str, Any]) -> None:
        pass


class _Kms:
    def unwrap(self, wrapped: bytes, context: Any) -> bytes:
        return b"k" * 32

    def mac(self, message: bytes) -> bytes:
        return b"m" * 32


@pytest.mark.parametrize(
    "entry",
    [
        {"epoch": "1", "expires_at": "2000", "sealed": b"\0" * 60},  # forged: fails authentication
        {"epoch": "999", "expires_at": "2000", "sealed": b"\0" * 60},  # impossible epoch
        {"epoch": "x"},  # malformed
    ],
    ids=["unauthentic", "impossible", "malformed"],
)
def test_given_a_refused_fleet_table_entry_then_only_the_fleet_integrity_filter_counts_its_log_line(
    caplog: pytest.LogCaptureFixture, entry: dict[str, Any]
) -> None:
    from chalicelib.keys.fleet import FleetKeyTable, FleetSealingKeys

    fleet = FleetKeyTable(
        _Kms(),
        _ForgedFleetTable(entry),
        FleetSealingKeys(_Kms()),
        lifetime_seconds=1000,
        epoch_seconds=1000,
        clock=lambda: 1500.0,
    )
    with caplog.at_level(logging.INFO):
        assert fleet.unwrap(b"wrapped", {"app": "pii-vault", "scope": "pool"}) == b"k" * 32
    events = [lambda_json_line(r) for r in caplog.records if r.levelno >= logging.ERROR]

    assert len(events) == 1
    assert filter_matches(fleet_integrity_filter_pattern(), events[0])
    assert not any(filter_matches(error_filter_pattern(code), events[0]) for code in ERROR_CODES.values())


def test_given_the_fleet_integrity_filter_then_warnings_and_request_failures_do_not_match() -> None:
    pattern = fleet_integrity_filter_pattern()

    assert not filter_matches(pattern, {"level": "WARNING", "message": "fleet key table read failed (X); asking KMS"})
    assert not filter_matches(pattern, {"level": "ERROR", "message": "request failed: integrity_error"})


def test_given_the_base_template_then_the_reader_alone_alarms_on_fleet_integrity_lines(base: dict[str, Any]) -> None:
    resources = base["Resources"]
    metric_filter = resources["ReaderFleetIntegrityErrorsFilter"]["Properties"]
    alarm = resources["ReaderFleetIntegrityErrorsAlarm"]["Properties"]

    assert metric_filter["LogGroupName"] == {"Ref": "ReaderLogGroup"}
    assert metric_filter["FilterPattern"] == fleet_integrity_filter_pattern()
    assert (
        metric_filter["MetricTransformations"][0]["MetricName"] == alarm["MetricName"] == "ReaderFleetIntegrityErrors"
    )
    assert (alarm["Threshold"], alarm["Period"]) == (1, 60)
    assert not [n for n in resources if "Fleet" in n and "Alarm" in n and not n.startswith("Reader")]


def test_given_the_dashboard_then_it_is_valid_json_with_a_widget_for_each_operations_view() -> None:
    body = json.loads(re.sub(r"\$\{[^}]+\}", "x", dashboard_body()))
    titles = " | ".join(w["properties"]["title"] for w in body["widgets"])

    for words in ("requests and errors", "latency p50", "integrity", "throttles", "KMS calls", "hit rate"):
        assert words in titles
    assert "ReaderFleetIntegrityErrors" in json.dumps(body)


def test_given_the_example_parameter_file_then_every_value_is_a_parameter_of_its_template(base: dict[str, Any]) -> None:
    params = load_params("example")
    declared = {"base": set(base["Parameters"]), **{s: set(merge(s)["Parameters"]) for s in STAGE_NAMES}}

    assert set(params) == set(declared)  # a section for every stack, all seven
    for stack, values in params.items():
        assert set(values) <= declared[stack], stack
        assert parameter_overrides(values)[0] == "Environment=example"
        assert len(values) > 1, f"the example shows no setting of the {stack} stack"
    required = {k for k, v in base["Parameters"].items() if "Default" not in v}
    assert required <= set(params["base"])


def test_given_generated_templates_then_no_literal_account_id_appears(tmp_path: Path) -> None:
    write_templates(tmp_path)

    for path in tmp_path.iterdir():
        assert not re.search(r"(?<![0-9])[0-9]{12}(?![0-9])", path.read_text()), path.name


def test_given_an_unknown_stage_then_generation_refuses() -> None:
    with pytest.raises(TemplateError):
        merge_template("admin")


def test_given_a_person_that_does_not_open_then_only_the_indexer_integrity_filter_counts_the_indexer_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from tests.unit.test_lookup import PERSON, make_world

    world = make_world()  # fake KMS, store, indexer
    pid = world.writer.create_person("acme", PERSON).id
    record = world.store.people[("acme", pid)]
    blob = bytearray(record.fields["email"])
    blob[-1] ^= 1  # the GCM tag no longer verifies
    record.fields["email"] = bytes(blob)

    with caplog.at_level(logging.INFO):
        world.indexer.handle_records([{"eventName": "INSERT", "dynamodb": {"Keys": layout.person_key("acme", pid)}}])
    events = [lambda_json_line(r) for r in caplog.records]
    counted = [e for e in events if filter_matches(indexer_integrity_filter_pattern(), e)]

    assert len(counted) == 1 and pid in counted[0]["message"]
    assert any("indexer batch" in e["message"] for e in events)  # the batch summary does not count


# -- issue 21 D: the stream mapping survives a poison record -----------------------------------


def test_given_the_indexer_merge_template_then_its_stream_mapping_bisects_bounds_its_retries_and_parks_failures() -> (
    None
):
    from chalicelib.stages.registry import STREAM_DELIVERY
    from infra.specs import FAILURE_QUEUE

    functions = merge("indexer")["Resources"]
    (stream,) = [f for f in functions.values() if "Events" in f["Properties"]]
    ((_, event),) = stream["Properties"]["Events"].items()
    properties = event["Properties"]
    assert properties["BisectBatchOnFunctionError"] is True
    assert 0 < properties["MaximumRetryAttempts"] == STREAM_DELIVERY.max_retry_attempts <= 10
    destination = properties["DestinationConfig"]["OnFailure"]["Destination"]
    assert destination == {"Fn::ImportValue": {"Fn::Sub": f"pii-vault-${{Environment}}-{FAILURE_QUEUE.output}"}}


def test_given_the_base_template_then_the_failure_queue_is_encrypted_exported_alarmed_and_the_indexers_alone(
    base: dict[str, Any],
) -> None:
    from infra.specs import FAILURE_QUEUE

    queue = base["Resources"][FAILURE_QUEUE.logical_id]
    assert queue["Type"] == "AWS::SQS::Queue" and queue["Properties"]["SqsManagedSseEnabled"] is True
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert base["Outputs"][FAILURE_QUEUE.output]["Value"] == {"Fn::GetAtt": [FAILURE_QUEUE.logical_id, "Arn"]}
    alarm = base["Resources"]["IndexerFailureQueueAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Threshold"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        1,
    )
    queue_arn = resolve({"Fn::GetAtt": [FAILURE_QUEUE.logical_id, "Arn"]})
    for role in ROLES:
        policy = resolve(base["Resources"][role.replace("Role", "Policy")]["Properties"]["PolicyDocument"])
        sends = [s for s in policy["Statement"] if "sqs:SendMessage" in str(s["Action"])]
        assert sends == ([] if role != "IndexerRole" else [sends[0]])
        if sends:
            assert sends[0]["Resource"] == queue_arn and sends[0]["Action"] == "sqs:SendMessage"


def test_given_a_stream_record_the_indexer_cannot_process_then_only_the_skipped_filter_counts_its_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from chalicelib.service.indexer import SKIPPED_MESSAGE
    from chalicelib.support.errors import KeyUnavailableError
    from tests.unit import test_stream
    from tests.unit.test_lookup import make_world

    world = make_world()  # test_stream's world
    indexer, gone, other = test_stream.poisoned(world, KeyUnavailableError("the tenant's key is pending deletion"))
    with caplog.at_level(logging.INFO):
        indexer.handle_records([test_stream.record("gone", gone, 1), test_stream.record("acme", other, 2)])
    events = [lambda_json_line(r) for r in caplog.records]
    counted = [e for e in events if filter_matches(indexer_skipped_filter_pattern(), e)]
    assert len(counted) == 1 and counted[0]["message"].startswith(SKIPPED_MESSAGE) and gone in counted[0]["message"]
    assert not [e for e in events if filter_matches(indexer_integrity_filter_pattern(), e)]


def test_given_the_base_template_then_the_stream_functions_skipped_records_are_counted_and_alarmed(
    base: dict[str, Any],
) -> None:
    resources = base["Resources"]
    flt = resources["IndexerSkippedRecordsFilter"]["Properties"]
    assert flt["FilterPattern"] == indexer_skipped_filter_pattern()
    assert flt["LogGroupName"] == {"Ref": "IndexerIndexBeaconsLogGroup"}
    alarm = resources["IndexerSkippedRecordsAlarm"]["Properties"]
    assert (alarm["MetricName"], alarm["Threshold"]) == ("IndexerSkippedRecords", 1)
