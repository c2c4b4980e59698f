"""Per-tenant keys on the local stack: onboard a tenant, write, rewrap, read, over real HTTP."""

from __future__ import annotations

from typing import Any

import requests

from chalicelib.keys.reencrypt import KmsReEncryptor
from chalicelib.service.jobs import Control, SegmentRun
from chalicelib.service.rewrap import RewrapPlan, rewrap_segment
from chalicelib.store import key_table
from chalicelib.store.job_items import DynamoDbSlotItems
from chalicelib.store.key_table import DynamoDbKeyEntries
from chalicelib.support.config import KEYS_SUFFIX, Settings
from tests.e2e.conftest import TIMEOUT, LocalStack, create_person, read_person
from tests.plaintext_guard import register
from tools import sample
from tools.recorder import principals
from tools.tenants import onboard


def clients(stack: LocalStack, principal: str = principals.OPERATOR) -> tuple[Any, Any, Settings]:
    """KMS and DynamoDB clients on the local stack signing as ``principal`` (the operator onboards
    tenants; the rewrap job signs as its own stage)."""
    env = stack.env_for(principal)
    session = principals.stage_session(principal, env["AWS_DEFAULT_REGION"])
    settings = Settings("writer", table_name=stack.table_name, tenants_table_name=env["PII_VAULT_TENANTS_TABLE"])
    return (
        session.client("kms", endpoint_url=stack.moto_url),
        session.client("dynamodb", endpoint_url=stack.moto_url),
        settings,
    )


def test_given_an_onboarded_tenant_on_the_local_stack_then_write_rewrap_and_read_work(
    local_stack: LocalStack, customer_id: str
) -> None:
    kms, ddb, settings = clients(local_stack)
    own_key = onboard(kms, ddb, settings, customer_id)["key_arn"]
    person = sample.person()
    register(person)
    person_id = create_person(local_stack, customer_id, person).json()["id"]
    keys_table = local_stack.table_name + KEYS_SUFFIX
    entries = key_table.tenant_partitions(customer_id)

    def filed_under() -> set[str]:
        """The KMS keys of the tenant's key-table entries (format v3: its records hold references)."""
        found = []
        for partition in entries:
            query = {"KeyConditionExpression": "#p = :p", "ExpressionAttributeNames": {"#p": key_table.PARTITION}}
            query["ExpressionAttributeValues"] = {":p": {"S": partition}}
            found += ddb.query(TableName=keys_table, **query)["Items"]
        return {entry[key_table.KMS_KEY]["S"] for entry in found}

    assert filed_under() == {own_key}
    assert read_person(local_stack, customer_id, person_id)["data"]["email"] == person["email"]

    # Move the tenant's data keys back under the shared key (e.g. a customer key being retired).
    shared = kms.describe_key(KeyId="alias/pii-vault")["KeyMetadata"]["Arn"]
    plan = RewrapPlan(own_key, shared, customer_id, "pii-vault")
    kms, ddb, _ = clients(local_stack, "rewrap")
    items = DynamoDbSlotItems(ddb, local_stack.table_name)
    keys = DynamoDbKeyEntries(ddb, keys_table)

    def reencryptor(source: str, target: str) -> KmsReEncryptor:
        return KmsReEncryptor(kms, source, target)

    moved = rewrap_segment(plan, SegmentRun("e2e", 0, 1), items, reencryptor, Control(), keys=keys)
    assert moved.done and moved.counts["keys_rewrapped"] == 2  # the full and the masked view's data key
    verify = rewrap_segment(plan, SegmentRun("e2e-verify", 0, 1), items, reencryptor, Control(), keys=keys, verify=True)
    assert verify.counts["keys_not_under_target"] == 0 and verify.counts["verified_keys"] == 2
    assert filed_under() == {shared}
    assert read_person(local_stack, customer_id, person_id)["data"]["email"] == person["email"]


def test_given_a_disabled_tenant_key_on_the_local_stack_then_a_read_answers_key_unavailable(
    local_stack: LocalStack, customer_id: str
) -> None:
    kms, ddb, settings = clients(local_stack)
    own_key = onboard(kms, ddb, settings, customer_id)["key_arn"]
    person_id = create_person(local_stack, customer_id).json()["id"]
    kms.disable_key(KeyId=kms.describe_key(KeyId=own_key)["KeyMetadata"]["KeyId"])
    response = requests.get(f"{local_stack.reader_url}/customers/{customer_id}/people/{person_id}", timeout=TIMEOUT)
    assert (response.status_code, response.json()["code"]) == (502, "key_unavailable")
