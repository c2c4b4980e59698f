"""The generated CloudFormation (tools/stacks.py): what each template promises, checked on
the documents themselves. Packaging (chalice) and the moto rehearsal are integration tests."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest

from chalicelib.api.http import guarded
from chalicelib.store import layout
from chalicelib.support import errors
from tools import access, policies, stacks

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
        "FleetKeyTable": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/pii-vault-{env}-fleet-keys",
        "ErasureLedgerTable": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/pii-vault-{env}-erasures",
        "JobsTable": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/pii-vault-{env}-jobs",
        "TenantsTable": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/pii-vault-{env}-tenants",
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


@pytest.fixture(scope="module")
def base() -> dict[str, Any]:
    return stacks.base_template()


def test_given_the_base_template_then_the_key_policy_names_this_stack_roles_and_the_admin_parameter(base):
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
    expected = policies.key_policy(
        ADMIN,
        ROLES["WriterRole"],
        ROLES["ReaderRole"],
        indexer_role_arn=ROLES["IndexerRole"],
        masked_role_arn=ROLES["MaskedRole"],
    )
    expected["Statement"] += policies.rewrap_key_statements(ROLES["RewrapRole"])
    assert resolve(key["Properties"]["KeyPolicy"]) == expected
    assert key["Properties"]["EnableKeyRotation"] is True
    assert (key["DeletionPolicy"], key["UpdateReplacePolicy"]) == ("Retain", "Retain")


def test_given_the_base_template_then_each_role_holds_exactly_the_generator_policy_for_this_environment(base):
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/pii-vault-dev"
    generators = {
        "writer": lambda key, table: policies.writer_policy(key, table, ledger_table_arn=f"{table}-erasures"),
        "reader": lambda key, table: policies.reader_policy(
            key, table, fleet_mac_key_arn=FLEET_KEY, beacon_key_arn=BEACON_KEY
        ),
        "indexer": lambda key, table: policies.indexer_policy(key, table, BEACON_KEY),
        "offboard": policies.offboard_policy,
        "rewrap": lambda key, table: policies.rewrap_policy(key, None, table),
    }
    # Per-tenant keys: the stages that use a tenant's key reach it by tag, and read the registry.
    for stage in ("writer", "reader", "indexer"):
        plain = generators[stage]
        generators[stage] = lambda key, table, plain=plain, stage=stage: policies.with_tenant_keys(
            plain(key, table), stage, table
        )
    groups = {
        r["Properties"]["LogGroupName"]["Fn::Sub"]
        for r in base["Resources"].values()
        if r["Type"] == "AWS::Logs::LogGroup"
    }
    for stage, generate in generators.items():
        title = stage.capitalize()
        policy = base["Resources"][f"{title}Policy"]
        deployed = resolve(policy["Properties"]["PolicyDocument"])
        expected = generate(KEY, table)
        # The one difference: the log groups are the environment's functions, pii-vault-dev-<stage>[-<function>].
        for statement in expected["Statement"]:
            if statement["Sid"].startswith("WriteOwnLogs"):
                statement["Resource"] = [
                    r.replace("/aws/lambda/pii-vault-", "/aws/lambda/pii-vault-dev-") for r in statement["Resource"]
                ]
                # ... each of them a log group of this stack (retention, metric filters).
                group = statement["Resource"][0].split(":log-group:")[1]
                assert group.replace("pii-vault-dev-", "pii-vault-${Environment}-") in groups

        assert deployed == expected
        assert policy["Properties"]["Roles"] == [{"Ref": f"{title}Role"}]
    assert base["Resources"]["WriterLogGroup"]["Properties"]["LogGroupName"] == {
        "Fn::Sub": "/aws/lambda/pii-vault-${Environment}-writer"
    }


def test_given_the_base_template_then_both_tables_are_on_demand_recoverable_protected_and_retained(base):
    for name in ("PiiTable", "IdempotencyTable"):
        table = base["Resources"][name]
        props = table["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert props["DeletionProtectionEnabled"] is True
        assert (table["DeletionPolicy"], table["UpdateReplacePolicy"]) == ("Retain", "Retain")


def test_given_the_base_template_then_the_fleet_mac_key_is_hmac_used_by_the_reader_only(base):
    key = base["Resources"]["FleetMacKey"]
    props = key["Properties"]

    assert (props["KeySpec"], props["KeyUsage"]) == ("HMAC_256", "GENERATE_VERIFY_MAC")
    assert "EnableKeyRotation" not in props  # KMS has no automatic rotation for HMAC keys
    assert resolve(props["KeyPolicy"]) == policies.fleet_key_policy(ADMIN, ROLES["ReaderRole"])
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


def test_given_the_base_template_then_the_fleet_table_is_on_demand_expiring_and_deliberately_without_backups(base):
    from chalicelib.store import fleet_table

    table = base["Resources"]["FleetKeyTable"]
    props = table["Properties"]
    expected = fleet_table.table_definition("x")

    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert (props["KeySchema"], props["AttributeDefinitions"]) == (
        expected["KeySchema"],
        expected["AttributeDefinitions"],
    )
    assert props["TimeToLiveSpecification"] == {"AttributeName": fleet_table.TTL, "Enabled": True}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": False}
    assert "DeletionProtectionEnabled" not in props
    assert (table["DeletionPolicy"], table["UpdateReplacePolicy"]) == ("Delete", "Delete")
    assert resolve(props["TableName"]) == "pii-vault-dev-fleet-keys"
    skipped = {s["id"]: s["comment"] for s in table["Metadata"]["checkov"]["skip"]}
    assert "expiring" in skipped["CKV_AWS_28"]
    # The other tables keep their backups: the PITR skip is the fleet table's alone.
    for name in ("PiiTable", "IdempotencyTable"):
        assert "CKV_AWS_28" not in {s["id"] for s in base["Resources"][name]["Metadata"]["checkov"]["skip"]}


def test_given_the_base_template_then_only_the_reader_role_policy_names_the_fleet_key_and_table(base):
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


def test_given_the_base_template_then_every_log_group_expires_after_the_retention_parameter(base):
    groups = [r for r in base["Resources"].values() if r["Type"] == "AWS::Logs::LogGroup"]

    # function and API access logs per API stage; indexer (stream + backfill), offboard, rewrap
    assert len(groups) == 2 * len(stacks.STAGES) + 4
    assert all(g["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"} for g in groups)
    assert base["Parameters"]["LogRetentionDays"]["Default"] == stacks.DEFAULT_LOG_RETENTION_DAYS == 365


@pytest.mark.parametrize("stage", stacks.STAGES)
def test_given_a_stage_merge_template_then_its_imports_are_exports_of_the_base_stack(base, stage):
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

    walk(stacks.stage_merge_template(stage))

    assert imports and imports <= exports


@pytest.mark.parametrize("stage", stacks.STAGES)
def test_given_a_stage_then_the_allow_list_parameter_feeds_both_the_resource_policy_and_the_function(stage):
    merge = stacks.stage_merge_template(stage)
    function = merge["Resources"]["APIHandler"]["Properties"]
    api = merge["Resources"]["RestAPI"]["Properties"]

    assert merge["Parameters"]["AllowedCallers"]["Type"] == "CommaDelimitedList"
    assert merge["Parameters"]["AllowedCallers"]["Default"] == ""
    assert function["Environment"]["Variables"]["PII_VAULT_ALLOWED_CALLERS"] == {
        "Fn::Join": [",", {"Ref": "AllowedCallers"}]
    }
    listed, empty = api["DefinitionBody"]["x-amazon-apigateway-policy"]["Fn::If"][1:]
    assert api["DefinitionBody"]["x-amazon-apigateway-policy"]["Fn::If"][0] == "HasAllowedCallers"
    # tools.access's document (the one the evaluator proves), its list replaced by the parameter.
    caller = "arn:aws:iam::123456789012:role/app-backend"
    expected = access.api_resource_policy(stage, [caller])
    (operator,) = expected["Statement"][0]["Condition"]
    expected["Statement"][0]["Condition"][operator]["aws:PrincipalArn"] = {"Ref": "AllowedCallers"}
    assert listed == expected
    assert empty == access.api_resource_policy(stage, [])


@pytest.mark.parametrize("stage", stacks.STAGES)
def test_given_a_stage_then_operations_settings_are_on_and_caching_off(stage):
    merge = stacks.stage_merge_template(stage)
    function = merge["Resources"]["APIHandler"]
    api = merge["Resources"]["RestAPI"]["Properties"]

    assert function["Properties"]["LoggingConfig"]["LogFormat"] == "JSON"
    assert function["Properties"]["Tracing"] == "Active"
    assert function["Properties"]["ReservedConcurrentExecutions"] == {"Ref": "ReservedConcurrency"}
    assert api["TracingEnabled"] is True and api["CacheClusterEnabled"] is False
    (settings,) = api["MethodSettings"]
    assert settings["CachingEnabled"] is False and settings["DataTraceEnabled"] is False
    assert settings["ThrottlingRateLimit"] == {"Ref": "ThrottlingRateLimit"}
    skipped = {s["id"]: s["comment"] for s in merge["Resources"]["RestAPI"]["Metadata"]["checkov"]["skip"]}
    assert "plaintext" in skipped["CKV_AWS_120"]


def test_given_the_reader_merge_template_then_it_passes_the_fleet_table_and_the_mac_key_arn():
    reader = stacks.stage_merge_template("reader")["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"]
    writer = stacks.stage_merge_template("writer")["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"]

    assert reader["PII_VAULT_FLEET_TABLE"] == {
        "Fn::ImportValue": {"Fn::Sub": "pii-vault-${Environment}-FleetTableName"}
    }
    # The key ARN export (an alias could be re-pointed), as for the data key.
    assert reader["PII_VAULT_FLEET_MAC_KEY_ID"] == {
        "Fn::ImportValue": {"Fn::Sub": "pii-vault-${Environment}-FleetMacKeyArn"}
    }
    assert not {k for k in writer if "FLEET" in k}


@pytest.mark.parametrize("stage", stacks.STAGES)
def test_given_a_stage_merge_template_then_its_key_cache_settings_are_those_of_the_chalice_config(stage):
    config = json.loads((stacks.ROOT / ".chalice" / "config.json").read_text(encoding="utf-8"))
    expected = {k: v for k, v in config["stages"][stage]["environment_variables"].items() if "KEY_CACHE" in k}
    variables = stacks.stage_merge_template(stage)["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"]

    assert expected and {k: v for k, v in variables.items() if "KEY_CACHE" in k} == expected
    # The masked stage opens keys like the reader: the reader's cache settings.
    cache = "READER" if stage == "masked" else stage.upper()
    assert all(f"PII_VAULT_{cache}_KEY_CACHE_" in k for k in expected)


def test_given_the_access_log_format_then_it_is_json_of_ids_status_and_timings_only():
    fields = set(stacks.ACCESS_LOG_FORMAT.values())

    assert "$context.status" in fields and "$context.requestId" in fields
    # No body, no query string, no header values.
    assert not [f for f in fields if re.search(r"requestOverride|querystring|body|header", f, re.I)]
    json.loads(json.dumps(stacks.ACCESS_LOG_FORMAT))


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
def test_given_an_error_answered_by_the_edge_then_exactly_its_metric_filter_counts_the_log_line(caplog, metric, error):
    @guarded
    def view() -> Any:
        raise error("boom")

    with caplog.at_level(logging.INFO):
        view()
    events = [lambda_json_line(r) for r in caplog.records if r.levelno >= logging.ERROR]

    assert events
    for name, code in stacks.ERROR_CODES.items():
        counted = [e for e in events if filter_matches(stacks.error_filter_pattern(code), e)]
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
def test_given_a_refused_fleet_table_entry_then_only_the_fleet_integrity_filter_counts_its_log_line(caplog, entry):
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
    assert filter_matches(stacks.fleet_integrity_filter_pattern(), events[0])
    assert not any(filter_matches(stacks.error_filter_pattern(code), events[0]) for code in stacks.ERROR_CODES.values())


def test_given_the_fleet_integrity_filter_then_warnings_and_request_failures_do_not_match():
    pattern = stacks.fleet_integrity_filter_pattern()

    assert not filter_matches(pattern, {"level": "WARNING", "message": "fleet key table read failed (X); asking KMS"})
    assert not filter_matches(pattern, {"level": "ERROR", "message": "request failed: integrity_error"})


def test_given_the_base_template_then_the_reader_alone_alarms_on_fleet_integrity_lines(base):
    resources = base["Resources"]
    metric_filter = resources["ReaderFleetIntegrityErrorsFilter"]["Properties"]
    alarm = resources["ReaderFleetIntegrityErrorsAlarm"]["Properties"]

    assert metric_filter["LogGroupName"] == {"Ref": "ReaderLogGroup"}
    assert metric_filter["FilterPattern"] == stacks.fleet_integrity_filter_pattern()
    assert (
        metric_filter["MetricTransformations"][0]["MetricName"] == alarm["MetricName"] == "ReaderFleetIntegrityErrors"
    )
    assert (alarm["Threshold"], alarm["Period"]) == (1, 60)
    assert not [n for n in resources if "Fleet" in n and "Alarm" in n and not n.startswith("Reader")]


def test_given_the_dashboard_then_it_is_valid_json_with_a_widget_for_each_operations_view():
    body = json.loads(re.sub(r"\$\{[^}]+\}", "x", stacks.dashboard_body()))
    titles = " | ".join(w["properties"]["title"] for w in body["widgets"])

    for words in ("requests and errors", "latency p50", "integrity", "throttles", "KMS calls", "hit rate"):
        assert words in titles
    assert "ReaderFleetIntegrityErrors" in json.dumps(body)


def test_given_the_example_parameter_file_then_every_value_is_a_parameter_of_its_template(base):
    params = stacks.load_params("example")
    declared = {
        "base": set(base["Parameters"]),
        **{s: set(stacks.stage_merge_template(s)["Parameters"]) for s in stacks.STAGES},
        **{s: set(stacks.job_merge_template(s)["Parameters"]) for s in stacks.JOB_STAGES},
    }

    for stack, values in params.items():
        assert set(values) <= declared[stack], stack
        assert stacks.parameter_overrides(values)[0] == "Environment=example"
    required = {k for k, v in base["Parameters"].items() if "Default" not in v}
    assert required <= set(params["base"])


def test_given_generated_templates_then_no_literal_account_id_appears(tmp_path):
    stacks.write_templates(tmp_path)

    for path in tmp_path.iterdir():
        assert not re.search(r"(?<![0-9])[0-9]{12}(?![0-9])", path.read_text()), path.name


def test_given_an_unknown_stage_or_a_leftover_sentinel_then_generation_refuses():
    with pytest.raises(stacks.TemplateError):
        stacks.stage_merge_template("admin")
    with pytest.raises(stacks.TemplateError):
        stacks.substitute({"x": "arn:aws:iam::999999999999:role/sentinel-x"}, {})


def test_given_a_person_that_does_not_open_then_only_the_indexer_integrity_filter_counts_the_indexer_line(caplog):
    from tests.unit.test_lookup import PERSON
    from tests.unit.test_lookup import world as make_world

    world = make_world.__wrapped__()  # the fixture's body: fake KMS, store, indexer
    pid = world["writer"].create_person("acme", PERSON).id
    record = world["store"].people[("acme", pid)]
    blob = bytearray(record.fields["email"])
    blob[-1] ^= 1  # the GCM tag no longer verifies
    record.fields["email"] = bytes(blob)

    with caplog.at_level(logging.INFO):
        world["indexer"].handle_records([{"eventName": "INSERT", "dynamodb": {"Keys": layout.person_key("acme", pid)}}])
    events = [lambda_json_line(r) for r in caplog.records]
    counted = [e for e in events if filter_matches(stacks.indexer_integrity_filter_pattern(), e)]

    assert len(counted) == 1 and pid in counted[0]["message"]
    assert any("indexer batch" in e["message"] for e in events)  # the batch summary does not count
