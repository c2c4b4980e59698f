"""Least privilege of the lookup and erasure roles, proven on the generated documents with
tests/policy_eval.py (moto does not enforce resources or conditions)."""

from __future__ import annotations

import pytest

from chalicelib.store import layout
from chalicelib.support.environment import Key
from infra.iam import key_policy, stage_policy
from tests.arns import account_arns
from tests.policy_eval import ALLOW, IMPLICIT_DENY, allowed, evaluate, kms_context
from tests.unit.test_policy_evaluation import ACCOUNT, DDB_ACTIONS, GOOD, IDEMPOTENCY_TABLE, KEY, KMS_ACTIONS, TABLE

BEACON_KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/7c1d9e4b-2a3f-4e8d-b6a5-3f9c0e1d2b47"
LEDGER = f"{TABLE}-erasures"
JOBS = f"{TABLE}-jobs"
BEACONS = f"{TABLE}-beacons"
INDEX = f"{BEACONS}/index/beacon-index"
OLD_INDEX = f"{TABLE}/index/beacon-index"  # the PII table's GSI before the beacon table
STREAM = f"{TABLE}/stream/2026-11-30T06:00:00.000"
MAC = {"kms:MacAlgorithm": "HMAC_SHA_256"}
ALL_KMS = (*KMS_ACTIONS, "kms:GenerateMac", "kms:VerifyMac")

ARNS = account_arns(KEY, TABLE, beacon_key_arn=BEACON_KEY)
WRITER = stage_policy("writer", ARNS)
READER = stage_policy("reader", ARNS)
INDEXER = stage_policy("indexer", ARNS)
OFFBOARD = stage_policy("offboard", ARNS)


def attrs(*names: str, **extra: str) -> dict[str, object]:
    return {"dynamodb:Attributes": list(names), **extra}


def leading(*partitions: str) -> dict[str, object]:
    """The request context of a write whose items' partition keys are ``partitions``."""
    return {"dynamodb:LeadingKeys": list(partitions)}


# -- indexer -------------------------------------------------------------------------------


def test_given_the_indexer_then_its_only_kms_uses_are_decrypt_in_context_and_mac_on_the_beacon_key() -> None:
    assert allowed(INDEXER, ALL_KMS, KEY, context={**GOOD, **MAC}) == {"kms:Decrypt"}
    assert allowed(INDEXER, ALL_KMS, BEACON_KEY, context={**GOOD, **MAC}) == {"kms:GenerateMac"}
    assert evaluate(INDEXER, "kms:Decrypt", KEY, kms_context({"app": "pii-vault"})) == IMPLICIT_DENY
    assert evaluate(INDEXER, "kms:GenerateMac", BEACON_KEY, {"kms:MacAlgorithm": "HMAC_SHA_512"}) == IMPLICIT_DENY


WRITES = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem")


@pytest.mark.parametrize("names", [("pk", "sk", "beacon", "beacon_version"), ("pk", "sk", "beacon"), ("pk",)])
@pytest.mark.parametrize("action", WRITES)
def test_given_the_indexer_then_no_write_of_any_shape_on_the_pii_table(names: tuple[str, ...], action: str) -> None:
    """Issue 21 A: a failed conditional write hands back the whole item (ALL_OLD), which no IAM
    condition governs. The indexer may Decrypt, so it holds no write on the PII table at all:
    neither the beacon-only UpdateItem it used to send nor anything else."""
    assert evaluate(INDEXER, action, TABLE, attrs(*names)) == IMPLICIT_DENY
    assert evaluate(INDEXER, action, TABLE, {}) == IMPLICIT_DENY


def test_given_the_indexer_then_it_writes_the_beacon_table_only() -> None:
    assert allowed(INDEXER, DDB_ACTIONS, BEACONS) == {"dynamodb:UpdateItem"}
    assert allowed(INDEXER, DDB_ACTIONS, TABLE, context=attrs(*EMAIL_READ)) == {"dynamodb:GetItem", "dynamodb:Scan"}
    for table in (LEDGER, IDEMPOTENCY_TABLE, f"{TABLE}-restored", INDEX):
        assert allowed(INDEXER, DDB_ACTIONS, table, context=attrs("pk", "sk", "beacon")) == set()
    assert allowed(INDEXER, ("dynamodb:GetItem", "dynamodb:PutItem"), JOBS) == {"dynamodb:GetItem", "dynamodb:PutItem"}
    assert evaluate(INDEXER, "dynamodb:GetRecords", STREAM) == ALLOW
    assert evaluate(INDEXER, "dynamodb:GetRecords", f"{TABLE}-other/stream/x") == IMPLICIT_DENY


EMAIL_READ = (
    *("pk", "sk", "v", "c", "u", "fe", "kc", "k0", "ke"),  # format v3: the email and the key slots it may name
    *("version", "created_at", "updated_at", "slots", "f_email"),  # items written before format v3
)
SPECIFIC = {"dynamodb:Select": "SPECIFIC_ATTRIBUTES"}


@pytest.mark.parametrize("action", ["dynamodb:GetItem", "dynamodb:Scan"])
def test_given_the_indexer_when_it_reads_the_email_attributes_by_projection_then_allowed(action: str) -> None:
    assert evaluate(INDEXER, action, TABLE, attrs(*EMAIL_READ, **SPECIFIC)) == ALLOW
    assert evaluate(INDEXER, action, TABLE, attrs(*EMAIL_READ)) == ALLOW  # GetItem sends no Select
    assert sorted(EMAIL_READ) == sorted(layout.INDEXER_READ_ATTRIBUTES)


@pytest.mark.parametrize("action", ["dynamodb:GetItem", "dynamodb:Scan"])
@pytest.mark.parametrize(
    "extra",
    [
        "f_name",
        "f_surname",
        "f_dob",
        "f_address",
        "f_",
        "f__updated",
        "f__created",
        "m_email",
        "m__updated",
        "mk_0",
        "kms_key",
        "latest",
        "beacon",
        "fn",
        "fa",
        "fc",
        "fu",
        "fl",
        "fp",
        "me",
        "mu",
        "j0",
        "kn",
    ],
)
def test_given_the_indexer_when_a_read_names_any_other_attribute_then_denied(action: str, extra: str) -> None:
    assert evaluate(INDEXER, action, TABLE, attrs("pk", "sk", "f_email", extra, **SPECIFIC)) == IMPLICIT_DENY


@pytest.mark.parametrize("action", ["dynamodb:GetItem", "dynamodb:Scan"])
@pytest.mark.parametrize(
    "context",
    [{}, {"dynamodb:Select": "ALL_ATTRIBUTES"}, attrs("pk", "sk", "f_email", **{"dynamodb:Select": "ALL_ATTRIBUTES"})],
    ids=["no-projection", "select-all", "projection-with-select-all"],
)
def test_given_the_indexer_when_a_read_has_no_projection_then_denied(action: str, context: dict[str, object]) -> None:
    assert evaluate(INDEXER, action, TABLE, context) == IMPLICIT_DENY


def test_given_the_indexer_then_it_reads_nothing_else_of_the_table() -> None:
    reads = ("dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:PartiQLSelect")
    assert allowed(INDEXER, reads, TABLE, context=attrs(*EMAIL_READ, **SPECIFIC)) == set()
    assert allowed(INDEXER, ("dynamodb:Query", "dynamodb:Scan"), INDEX, context=attrs("pk", "sk")) == set()


# -- offboarding ----------------------------------------------------------------------------


def test_given_offboarding_then_no_kms_action_at_all() -> None:
    for key in (KEY, BEACON_KEY):
        assert allowed(OFFBOARD, ALL_KMS, key, context={**GOOD, **MAC}) == set()


def test_given_offboarding_then_it_queries_keys_only() -> None:
    keys_only = attrs("pk", "sk", **{"dynamodb:Select": "SPECIFIC_ATTRIBUTES"})
    assert evaluate(OFFBOARD, "dynamodb:Query", TABLE, keys_only) == ALLOW
    with_time = attrs("pk", "sk", "created_at", **{"dynamodb:Select": "SPECIFIC_ATTRIBUTES"})
    assert evaluate(OFFBOARD, "dynamodb:Query", TABLE, with_time) == IMPLICIT_DENY  # it needs no timestamp
    ciphertext = attrs("pk", "sk", "f_email", **{"dynamodb:Select": "SPECIFIC_ATTRIBUTES"})
    assert evaluate(OFFBOARD, "dynamodb:Query", TABLE, ciphertext) == IMPLICIT_DENY
    assert evaluate(OFFBOARD, "dynamodb:Query", TABLE, {"dynamodb:Select": "ALL_ATTRIBUTES"}) == IMPLICIT_DENY
    assert evaluate(OFFBOARD, "dynamodb:Query", TABLE, {}) == IMPLICIT_DENY


def test_given_offboarding_then_it_deletes_but_never_writes_or_reads_items() -> None:
    assert allowed(OFFBOARD, DDB_ACTIONS, TABLE) == {"dynamodb:DeleteItem"}
    returned = {"dynamodb:ReturnValues": "ALL_OLD"}
    assert evaluate(OFFBOARD, "dynamodb:DeleteItem", TABLE, returned) == IMPLICIT_DENY
    assert allowed(OFFBOARD, DDB_ACTIONS, IDEMPOTENCY_TABLE) == {"dynamodb:DeleteItem", "dynamodb:Scan"}
    assert allowed(OFFBOARD, DDB_ACTIONS, LEDGER, context=leading("tenant#acme")) == {"dynamodb:PutItem"}
    assert allowed(OFFBOARD, DDB_ACTIONS, INDEX) == set()
    assert allowed(OFFBOARD, DDB_ACTIONS, BEACONS) == set()


# -- reader and writer additions --------------------------------------------------------------


def test_given_the_reader_then_search_adds_mac_and_index_query_and_stays_read_only() -> None:
    assert allowed(READER, ALL_KMS, BEACON_KEY, context={**GOOD, **MAC}) == {"kms:GenerateMac"}
    assert allowed(READER, ALL_KMS, KEY, context={**GOOD, **MAC}) == {"kms:Decrypt"}
    assert allowed(READER, DDB_ACTIONS, INDEX) == {"dynamodb:Query"}
    assert allowed(READER, DDB_ACTIONS, BEACONS) == set()  # the index only, keys only
    assert allowed(READER, DDB_ACTIONS, OLD_INDEX) == set()
    writes = {a for a in DDB_ACTIONS if not a.endswith(("GetItem", "Query", "Scan", "Select"))}
    for resource in (TABLE, INDEX, BEACONS, LEDGER, IDEMPOTENCY_TABLE, JOBS):
        assert not allowed(READER, writes, resource)


def test_given_the_writer_then_it_appends_to_the_ledger_and_cannot_mac_or_read_it() -> None:
    assert allowed(WRITER, DDB_ACTIONS, LEDGER, context=leading("person#acme")) == {"dynamodb:PutItem"}
    assert allowed(WRITER, ALL_KMS, BEACON_KEY, context={**GOOD, **MAC}) == set()
    for resource in (INDEX, BEACONS, OLD_INDEX):  # the writer can read no beacon (issue 21 A)
        assert allowed(WRITER, DDB_ACTIONS, resource) == set()


def test_given_the_beacon_key_policy_then_only_named_roles_mac_and_the_admin_cannot() -> None:
    admin = f"arn:aws:iam::{ACCOUNT}:role/pii-vault-admin"
    reader = f"arn:aws:iam::{ACCOUNT}:role/pii-vault-reader-api_handler"
    document = key_policy(Key.BEACON_MAC, admin, {"reader": reader})
    assert evaluate(document, "kms:GenerateMac", BEACON_KEY, MAC, principal=reader) == ALLOW
    assert evaluate(document, "kms:GenerateMac", BEACON_KEY, MAC, principal=admin) == IMPLICIT_DENY
    assert (
        evaluate(
            document,
            "kms:GenerateMac",
            BEACON_KEY,
            MAC,
            principal=f"arn:aws:iam::{ACCOUNT}:role/pii-vault-writer-api_handler",
        )
        == IMPLICIT_DENY
    )


# -- issue 21 C: who may append which ledger entry (chalicelib/store/tables.py) ------------------


@pytest.mark.parametrize(
    "partition",
    ["tenant#victim", "victim", "tenant_done#victim", "person", "", "Tenant#victim"],
    ids=["tenant", "legacy-shape", "done-mark", "no-tenant", "empty", "case"],
)
def test_given_the_writer_then_it_cannot_append_a_tenant_wide_entry_in_any_shape(partition: str) -> None:
    """The review's plant: a writer PutItem ("victim", "tenant", "victim", 9999...) made every later
    restore-replay delete the whole tenant. The writer's PutItem may name person and secret
    partitions only; offboarding alone appends tenant entries."""
    assert evaluate(WRITER, "dynamodb:PutItem", LEDGER, leading(partition)) == IMPLICIT_DENY
    assert evaluate(WRITER, "dynamodb:PutItem", LEDGER, leading("person#acme", partition)) == IMPLICIT_DENY
    assert evaluate(WRITER, "dynamodb:PutItem", LEDGER, {}) == IMPLICIT_DENY


@pytest.mark.parametrize("partition", ["person#acme", "secret#acme"])
def test_given_the_writer_then_it_appends_its_own_erasures(partition: str) -> None:
    assert evaluate(WRITER, "dynamodb:PutItem", LEDGER, leading(partition)) == ALLOW


def test_given_offboarding_then_it_appends_tenant_entries_only() -> None:
    assert evaluate(OFFBOARD, "dynamodb:PutItem", LEDGER, leading("tenant#acme")) == ALLOW
    for partition in ("person#acme", "secret#acme", "acme"):
        assert evaluate(OFFBOARD, "dynamodb:PutItem", LEDGER, leading(partition)) == IMPLICIT_DENY
    assert evaluate(OFFBOARD, "dynamodb:PutItem", LEDGER, {}) == IMPLICIT_DENY


def test_given_the_stores_then_each_role_writes_the_partitions_its_policy_allows() -> None:
    """The partitions the code writes are the ones the policies name (one source: tables.py)."""
    from chalicelib.store import tables

    for kind in tables.WRITER_LEDGER_KINDS:
        partition = tables.ledger_partition(kind, "acme")
        assert evaluate(WRITER, "dynamodb:PutItem", LEDGER, leading(partition)) == ALLOW
        assert evaluate(OFFBOARD, "dynamodb:PutItem", LEDGER, leading(partition)) == IMPLICIT_DENY
    for kind in tables.OFFBOARD_LEDGER_KINDS:
        partition = tables.ledger_partition(kind, "acme")
        assert evaluate(OFFBOARD, "dynamodb:PutItem", LEDGER, leading(partition)) == ALLOW
        assert evaluate(WRITER, "dynamodb:PutItem", LEDGER, leading(partition)) == IMPLICIT_DENY


# -- issue 21 D: the indexer's on-failure destination -----------------------------------------

QUEUE = f"arn:aws:sqs:us-east-1:{ACCOUNT}:pii-vault-indexer-failures"


def test_given_the_indexer_then_it_may_only_send_to_its_failure_queue() -> None:
    sqs = ("sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:PurgeQueue", "sqs:GetQueueAttributes")
    assert ARNS.failure_queue() == QUEUE
    assert allowed(INDEXER, sqs, QUEUE) == {"sqs:SendMessage"}
    assert allowed(INDEXER, sqs, f"arn:aws:sqs:us-east-1:{ACCOUNT}:pii-vault-other") == set()
    for policy in (WRITER, READER, OFFBOARD):
        assert allowed(policy, sqs, QUEUE) == set()
