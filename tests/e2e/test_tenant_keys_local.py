"""Per-tenant keys on the local stack: onboard a tenant, write, rewrap, read, over real HTTP."""

from __future__ import annotations

import boto3
import requests

from chalicelib.keys.reencrypt import KmsReEncryptor
from chalicelib.service.jobs import Control, SegmentRun
from chalicelib.service.rewrap import RewrapPlan, rewrap_segment
from chalicelib.store import layout
from chalicelib.store.job_items import DynamoDbSlotItems
from chalicelib.support.config import Settings
from tests.e2e.conftest import TIMEOUT, create_person, read_person
from tests.plaintext_guard import register
from tools import sample
from tools.tenants import onboard


def clients(stack):
    env = stack.env
    session = boto3.session.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=env.get("AWS_SESSION_TOKEN"),
        region_name=env["AWS_DEFAULT_REGION"],
    )
    settings = Settings("writer", table_name=stack.table_name, tenants_table_name=env["PII_VAULT_TENANTS_TABLE"])
    return session.client("kms", endpoint_url=stack.moto_url), stack.dynamodb, settings


def test_given_an_onboarded_tenant_on_the_local_stack_then_write_rewrap_and_read_work(local_stack, customer_id):
    kms, ddb, settings = clients(local_stack)
    own_key = onboard(kms, ddb, settings, customer_id)["key_arn"]
    person = sample.person()
    register(person)
    person_id = create_person(local_stack, customer_id, person).json()["id"]
    key = layout.person_key(customer_id, person_id)
    assert ddb.get_item(TableName=local_stack.table_name, Key=key)["Item"]["kms_key"]["S"] == own_key
    assert read_person(local_stack, customer_id, person_id)["data"]["email"] == person["email"]

    # Move the tenant's data keys back under the shared key (e.g. a customer key being retired).
    shared = kms.describe_key(KeyId="alias/pii-vault")["KeyMetadata"]["Arn"]
    plan = RewrapPlan(own_key, shared, customer_id, "pii-vault")
    items = DynamoDbSlotItems(ddb, local_stack.table_name)

    def reencryptor(source: str, target: str) -> KmsReEncryptor:
        return KmsReEncryptor(kms, source, target)

    moved = rewrap_segment(plan, SegmentRun("e2e", 0, 1), items, reencryptor, Control())
    assert moved.done and moved.counts["items_rewrapped"] == 1
    verify = rewrap_segment(plan, SegmentRun("e2e-verify", 0, 1), items, reencryptor, Control(), verify=True)
    assert verify.counts["not_under_target"] == 0 and verify.counts["verified_slots"] >= 1
    assert ddb.get_item(TableName=local_stack.table_name, Key=key)["Item"]["kms_key"]["S"] == shared
    assert read_person(local_stack, customer_id, person_id)["data"]["email"] == person["email"]


def test_given_a_disabled_tenant_key_on_the_local_stack_then_a_read_answers_key_unavailable(local_stack, customer_id):
    kms, ddb, settings = clients(local_stack)
    own_key = onboard(kms, ddb, settings, customer_id)["key_arn"]
    person_id = create_person(local_stack, customer_id).json()["id"]
    kms.disable_key(KeyId=kms.describe_key(KeyId=own_key)["KeyMetadata"]["KeyId"])
    response = requests.get(f"{local_stack.reader_url}/customers/{customer_id}/people/{person_id}", timeout=TIMEOUT)
    assert (response.status_code, response.json()["code"]) == (502, "key_unavailable")
