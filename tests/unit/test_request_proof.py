"""The judge of the recorded-request proof (tests/request_proof.py): it denies what the generated
policies deny, names the closest statement, refuses requests it cannot attribute, and cannot pass
a wrong policy."""

from __future__ import annotations

from typing import Any

import pytest

from infra import iam
from tests.request_proof import Generator, Governance, Proof
from tools.recorder import principals
from tools.recorder.capture import Request
from tools.recorder.derive import accesses
from tools.recorder.dynamodb import TableSchema
from tools.recorder.kms import KeyFacts
from tools.recorder.model import Access

REGION, ACCOUNT = "us-east-1", "123456789012"
SHARED = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/11111111-2222-3333-4444-555555555555"
KEYS = {"alias/pii-vault": KeyFacts(SHARED, ("alias/pii-vault",))}
SCHEMAS = {"pii-vault": TableSchema("pk", "sk"), "pii-vault-erasures": TableSchema("pk", "sk")}


@pytest.fixture(scope="module")
def governance() -> Governance:
    return Governance()


def derive(service: str, operation: str, params: dict[str, Any]) -> list[Access]:
    return accesses(
        service,
        operation,
        params,
        region=REGION,
        account=ACCOUNT,
        tables=SCHEMAS.get,
        keys=KEYS.get,
        ciphertext_key=lambda b: None,
    )


def offboard_query(**extra: Any) -> Access:
    (access,) = derive(
        "dynamodb",
        "Query",
        {
            "TableName": "pii-vault",
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": "C#acme"}},
            "ProjectionExpression": "pk, sk",
            "ConsistentRead": True,
            **extra,
        },
    )
    return access


def test_the_offboarding_query_without_select_is_denied_and_the_message_names_the_statement(
    governance: Governance,
) -> None:
    verdict = governance.judge("offboard", offboard_query())
    assert not verdict.allowed
    assert "stage offboard, dynamodb:Query" in verdict.message
    assert "OffboardPolicy/QueryKeysOnly" in verdict.message and "StringEquals dynamodb:Select" in verdict.message
    assert governance.judge("offboard", offboard_query(Select="SPECIFIC_ATTRIBUTES")).allowed


def test_a_projection_naming_an_unlisted_attribute_is_denied(governance: Governance) -> None:
    access = offboard_query(Select="SPECIFIC_ATTRIBUTES", ProjectionExpression="pk, sk, f_email")
    assert "ForAllValues:StringEquals dynamodb:Attributes" in governance.judge("offboard", access).message


def test_kms_is_judged_by_the_key_policy_too(governance: Governance) -> None:
    (encrypt,) = derive(
        "kms", "Encrypt", {"KeyId": "alias/pii-vault", "EncryptionContext": {"app": "pii-vault", "customer_id": "acme"}}
    )
    assert governance.judge("writer", encrypt).allowed
    denied = governance.judge("reader", encrypt)
    assert not denied.allowed and "kms:Encrypt" in denied.message
    (decrypt,) = derive(
        "kms",
        "Decrypt",
        {
            "KeyId": "alias/pii-vault",
            "EncryptionContext": {"app": "pii-vault", "customer_id": "acme", "view": "masked"},
        },
    )
    assert not governance.judge("reader", decrypt).allowed  # the reader decrypts the full view only
    assert governance.judge("masked", decrypt).allowed


def test_a_grant_counts_as_used_only_when_a_request_was_allowed_by_it(governance: Governance) -> None:
    verdict = governance.judge("offboard", offboard_query(Select="SPECIFIC_ATTRIBUTES"))
    assert {(g.policy, g.sid, g.action, g.resource) for g in verdict.used} == {
        ("OffboardPolicy", "QueryKeysOnly", "dynamodb:Query", "PiiTable.Arn")
    }


def request(principal: str | None, access_list: list[Access], **kwargs: Any) -> Request:
    key = principals.access_key_id(principal) if principal else "AKIASTRANGER00000000"
    return Request(key, "dynamodb", "Query", access_list, **kwargs)


def test_the_proof_fails_on_a_deliberately_wrong_policy(governance: Governance) -> None:
    allowed = request("offboard", [offboard_query(Select="SPECIFIC_ATTRIBUTES")])
    assert Proof(_governance=governance).check([allowed]) == []

    def without_query(stage: str, arns: Any) -> Any:
        document = iam.stage_policy(stage, arns)
        document["Statement"] = [s for s in document["Statement"] if s.get("Sid") != "QueryKeysOnly"]
        return document

    wrong = Governance(Generator(stage_policy=without_query))
    problems = Proof(_governance=wrong).check([allowed])
    assert len(problems) == 1 and problems[0].startswith("DENIED ImplicitDeny: stage offboard, dynamodb:Query")


def test_requests_without_a_principal_fail_and_setup_is_counted_not_judged(governance: Governance) -> None:
    proof = Proof(_governance=governance)
    query = [offboard_query()]  # would be denied if it were judged
    assert proof.check([request(None, query)])[0].startswith("UNATTRIBUTED")
    assert proof.check([request(principals.OPERATOR, query, stage_code=True)])[0].startswith("UNATTRIBUTED")
    assert proof.check([request(principals.OPERATOR, query, stage_code=True, declared="adapter test")]) == []
    assert proof.check([request(principals.OPERATOR, query, stage_code=False)]) == []
    proof.register("AKIASTRANGER00000000", "probe")
    assert proof.check([request(None, query)]) == []
    assert proof.counts == {"unattributed": 2, "operator (declared)": 1, "operator": 1, "probe": 1}


def test_an_underivable_request_of_a_stage_fails(governance: Governance) -> None:
    problems = Proof(_governance=governance).check([request("writer", [], error="Underivable: PartiQL")])
    assert problems == ["UNDERIVABLE: stage writer, dynamodb:Query: Underivable: PartiQL"]


def test_ungoverned_parameters_are_reported_per_stage(governance: Governance) -> None:
    (delete,) = derive(
        "dynamodb",
        "DeleteItem",
        {
            "TableName": "pii-vault",
            "Key": {"pk": {"S": "C#a"}, "sk": {"S": "P#1"}},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        },
    )
    proof = Proof(_governance=governance)
    assert proof.check([request("writer", [delete])]) == []
    assert proof.ungoverned["writer"] == {"dynamodb:DeleteItem ReturnValuesOnConditionCheckFailure=ALL_OLD": 1}


def test_a_whole_item_handed_back_to_a_stage_that_may_decrypt_fails_as_a_leak(governance: Governance) -> None:
    """The review's finding A: an UpdateItem the indexer's policy allows (beacon attributes only)
    with ReturnValuesOnConditionCheckFailure=ALL_OLD hands back the whole person, which the
    indexer's kms:Decrypt then opens. No IAM condition governs the parameter: the proof refuses it."""
    update = {
        "TableName": "pii-vault",
        "Key": {"pk": {"S": "C#a"}, "sk": {"S": "P#1"}},
        "UpdateExpression": "SET beacon = :b",
        "ConditionExpression": "attribute_exists(pk)",
        "ExpressionAttributeValues": {":b": {"S": "x"}},
    }
    (leaky,) = derive("dynamodb", "UpdateItem", {**update, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"})
    (quiet,) = derive("dynamodb", "UpdateItem", {**update, "ReturnValuesOnConditionCheckFailure": "NONE"})
    proof = Proof(_governance=governance)
    assert governance.may_decrypt("indexer") and not governance.may_decrypt("writer")
    problems = proof.check([request("indexer", [leaky])])
    assert any(p.startswith("LEAK: stage indexer, dynamodb:UpdateItem") for p in problems)
    assert not any(p.startswith("LEAK") for p in proof.check([request("indexer", [quiet])]))
    # The writer sends it (to learn the stored version) but can decrypt nothing: reported, not refused.
    assert not any(p.startswith("LEAK") for p in proof.check([request("writer", [leaky])]))
    assert "dynamodb:UpdateItem ReturnValuesOnConditionCheckFailure=ALL_OLD" in proof.ungoverned["writer"]
