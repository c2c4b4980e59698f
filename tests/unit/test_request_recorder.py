"""The recorder's rules: which accesses and condition keys AWS derives from a request's parameters
(tools/recorder/), one test (or more) per rule, with the documented readings it keeps open."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from chalicelib.stages import STAGE_NAMES
from tools.recorder import principals
from tools.recorder.capture import Request, _ciphertext_key
from tools.recorder.derive import accesses
from tools.recorder.dynamodb import TableSchema, expression_attributes
from tools.recorder.kms import KeyFacts
from tools.recorder.model import Access, Underivable

REGION, ACCOUNT = "us-east-1", "123456789012"
TABLE = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/pii-vault"
SCHEMAS = {
    "pii-vault": TableSchema("pk", "sk", {"beacon-index": ("beacon", None)}),
    "pii-vault-erasures": TableSchema("lpk", "lsk"),
    "pii-vault-idempotency": TableSchema("id"),
}
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/11111111-2222-3333-4444-555555555555"
OTHER_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/99999999-2222-3333-4444-555555555555"
KEYS = {
    "alias/pii-vault": KeyFacts(KEY_ARN, ("alias/pii-vault",), {"app": "pii-vault"}),
    KEY_ARN: KeyFacts(KEY_ARN, ("alias/pii-vault",), {"app": "pii-vault"}),
    f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/pii-vault": KeyFacts(KEY_ARN, ("alias/pii-vault",), {"app": "pii-vault"}),
    OTHER_ARN: KeyFacts(OTHER_ARN, (), {"pii-vault-tenant": "acme"}),
}
PK = {"pk": {"S": "acme"}, "sk": {"S": "P#1"}}


def derive(service: str, operation: str, params: dict[str, Any]) -> list[Access]:
    return accesses(
        service,
        operation,
        params,
        region=REGION,
        account=ACCOUNT,
        tables=SCHEMAS.get,
        keys=KEYS.get,
        ciphertext_key=lambda blob: KEY_ARN if blob == "Y2lwaGVy" else None,
    )


def one(service: str, operation: str, params: dict[str, Any]) -> Access:
    (access,) = derive(service, operation, params)
    return access


def readings(access: Access, key: str) -> list[Any]:
    """Every value ``key`` takes across the access's alternatives (None: absent)."""
    for dimension in access.alternatives:
        if any(key in reading for reading in dimension):
            return [reading.get(key) for reading in dimension]
    return [access.context.get(key)]


# -- expressions ---------------------------------------------------------------------------------


def test_an_expression_names_the_first_element_of_each_path_with_aliases_resolved() -> None:
    names = {"#v": "version", "#m": "meta", "#k": "nested_key"}
    found = expression_attributes(
        "attribute_exists(pk) AND #v = :v AND size(slots) > :n AND #m.#k = :x AND f_name[0].x <> :y", names
    )
    assert found == {"pk", "version", "slots", "meta", "f_name"}


def test_update_expression_clauses_name_their_targets_and_operands() -> None:
    found = expression_attributes(
        "SET a = if_not_exists(b, :z), c = list_append(c, :l) REMOVE d ADD e :n DELETE f :s", {}
    )
    assert found == {"a", "b", "c", "d", "e", "f"}


def test_keywords_functions_and_values_are_not_attributes() -> None:
    assert expression_attributes("NOT begins_with(sk, :p) OR pk IN (:a, :b) AND v BETWEEN :x AND :y", {}) == {
        "sk",
        "pk",
        "v",
    }


def test_an_unknown_alias_or_an_unparsable_expression_is_underivable() -> None:
    with pytest.raises(Underivable):
        expression_attributes("#nope = :v", {})
    with pytest.raises(Underivable):
        expression_attributes("a = :v ; DROP", {})


# -- DynamoDB items ------------------------------------------------------------------------------


def test_get_item_attributes_with_and_without_the_key_and_its_leading_key() -> None:
    access = one(
        "dynamodb",
        "GetItem",
        {
            "TableName": "pii-vault",
            "Key": PK,
            "ProjectionExpression": "#a, m_name",
            "ExpressionAttributeNames": {"#a": "mk_email"},
            "ConsistentRead": True,
        },
    )
    assert (access.action, access.resource) == ("dynamodb:GetItem", TABLE)
    assert access.context == {"dynamodb:LeadingKeys": ["acme"], "dynamodb:FirstPartitionKeyValues": ["acme"]}
    assert readings(access, "dynamodb:Attributes") == [["m_name", "mk_email", "pk", "sk"], ["m_name", "mk_email"]]
    assert readings(access, "dynamodb:ReturnConsumedCapacity") == [None, "NONE"]
    # GetItem takes no Select; the key may still be set, to what the projection implies.
    assert readings(access, "dynamodb:Select") == [None, "SPECIFIC_ATTRIBUTES"]
    assert access.ungoverned == {"ConsistentRead": True}


def test_get_item_without_projection_has_no_attributes_under_one_reading() -> None:
    access = one("dynamodb", "GetItem", {"TableName": "pii-vault", "Key": PK})
    assert readings(access, "dynamodb:Attributes") == [["pk", "sk"], None]
    assert readings(access, "dynamodb:Select") == [None, "ALL_ATTRIBUTES"]


def test_put_item_names_every_item_attribute_and_its_condition_return_values_default_and_ungoverned() -> None:
    access = one(
        "dynamodb",
        "PutItem",
        {
            "TableName": "pii-vault",
            "Item": {**PK, "f_name": {"B": "AA=="}},
            "ConditionExpression": "attribute_not_exists(pk) OR #v < :v",
            "ExpressionAttributeNames": {"#v": "version"},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        },
    )
    assert readings(access, "dynamodb:Attributes")[0] == ["f_name", "pk", "sk", "version"]
    assert readings(access, "dynamodb:ReturnValues") == [None, "NONE"]
    assert access.ungoverned == {"ReturnValuesOnConditionCheckFailure": "ALL_OLD"}


def test_update_item_with_return_values_sent_and_legacy_parameters() -> None:
    access = one(
        "dynamodb",
        "UpdateItem",
        {
            "TableName": "pii-vault",
            "Key": PK,
            "AttributeUpdates": {"beacon": {"Value": {"B": "AA=="}}},
            "Expected": {"version": {"Value": {"N": "1"}}},
            "ReturnValues": "UPDATED_NEW",
        },
    )
    assert readings(access, "dynamodb:Attributes")[1] == ["beacon", "version"]
    assert readings(access, "dynamodb:ReturnValues") == ["UPDATED_NEW"]


def test_delete_item_and_a_binary_partition_key_is_never_recorded() -> None:
    access = one("dynamodb", "DeleteItem", {"TableName": "pii-vault-idempotency", "Key": {"id": {"B": "c2VjcmV0"}}})
    assert access.context["dynamodb:LeadingKeys"] == ["<binary>"]
    assert "c2VjcmV0" not in str(access.to_json())


# -- DynamoDB reads of many items ----------------------------------------------------------------


def test_query_leading_key_from_the_key_condition_and_select_readings_when_not_sent() -> None:
    access = one(
        "dynamodb",
        "Query",
        {
            "TableName": "pii-vault",
            "KeyConditionExpression": "#p = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeNames": {"#p": "pk"},
            "ExpressionAttributeValues": {":pk": {"S": "acme"}, ":prefix": {"S": "P#"}},
            "ProjectionExpression": "pk, sk, created_at",
            "Limit": 100,
        },
    )
    assert access.context["dynamodb:LeadingKeys"] == ["acme"]
    assert readings(access, "dynamodb:Select") == [None, "ALL_ATTRIBUTES", "SPECIFIC_ATTRIBUTES"]
    assert readings(access, "dynamodb:Attributes")[0] == ["created_at", "pk", "sk"]
    assert access.ungoverned == {"Limit": 100}


def test_query_with_select_sent_has_one_reading() -> None:
    access = one(
        "dynamodb",
        "Query",
        {
            "TableName": "pii-vault",
            "KeyConditions": {"pk": {"AttributeValueList": [{"S": "acme"}], "ComparisonOperator": "EQ"}},
            "Select": "SPECIFIC_ATTRIBUTES",
            "AttributesToGet": ["pk"],
            "ExclusiveStartKey": PK,
        },
    )
    assert readings(access, "dynamodb:Select") == ["SPECIFIC_ATTRIBUTES"]
    assert access.ungoverned == {"ExclusiveStartKey": "present"}


def test_a_query_of_an_index_is_authorized_on_the_index_arn_with_its_partition_key() -> None:
    access = one(
        "dynamodb",
        "Query",
        {
            "TableName": "pii-vault",
            "IndexName": "beacon-index",
            "KeyConditionExpression": "beacon = :b",
            "ExpressionAttributeValues": {":b": {"S": "abc"}},
            "Select": "ALL_PROJECTED_ATTRIBUTES",
        },
    )
    assert access.resource == TABLE + "/index/beacon-index"
    assert access.context["dynamodb:LeadingKeys"] == ["abc"]
    # The index's key attributes count as keys for the "without keys" reading.
    assert readings(access, "dynamodb:Attributes") == [["beacon"], None]


def test_a_query_without_an_equality_on_the_partition_key_is_underivable() -> None:
    with pytest.raises(Underivable):
        one("dynamodb", "Query", {"TableName": "pii-vault", "KeyConditionExpression": "sk = :s"})


def test_scan_has_no_leading_keys_and_names_its_filter() -> None:
    access = one(
        "dynamodb",
        "Scan",
        {
            "TableName": "pii-vault-idempotency",
            "FilterExpression": "begins_with(id, :p)",
            "Segment": 0,
            "TotalSegments": 4,
        },
    )
    assert "dynamodb:LeadingKeys" not in access.context
    assert readings(access, "dynamodb:Attributes") == [["id"], None]
    assert readings(access, "dynamodb:Select") == [None, "ALL_ATTRIBUTES"]
    assert access.ungoverned == {"Segment": 0, "TotalSegments": 4}


def test_batch_get_and_batch_write_are_authorized_per_table() -> None:
    gets = derive(
        "dynamodb",
        "BatchGetItem",
        {
            "RequestItems": {
                "pii-vault": {
                    "Keys": [PK, {"pk": {"S": "beta"}, "sk": {"S": "P#2"}}],
                    "ProjectionExpression": "f_name",
                },
                "pii-vault-idempotency": {"Keys": [{"id": {"S": "x"}}]},
            }
        },
    )
    assert [(a.action, a.resource.rsplit("/", 1)[1], a.context["dynamodb:LeadingKeys"]) for a in gets] == [
        ("dynamodb:BatchGetItem", "pii-vault", ["acme", "beta"]),
        ("dynamodb:BatchGetItem", "pii-vault-idempotency", ["x"]),
    ]
    assert readings(gets[0], "dynamodb:Attributes") == [["f_name", "pk", "sk"], ["f_name"]]
    (write,) = derive(
        "dynamodb",
        "BatchWriteItem",
        {
            "RequestItems": {
                "pii-vault": [{"PutRequest": {"Item": {**PK, "x": {"S": "1"}}}}, {"DeleteRequest": {"Key": PK}}]
            }
        },
    )
    assert (write.action, write.context["dynamodb:LeadingKeys"]) == ("dynamodb:BatchWriteItem", ["acme"])


def test_transaction_items_are_their_underlying_actions_inside_the_enclosing_operation() -> None:
    found = derive(
        "dynamodb",
        "TransactWriteItems",
        {
            "TransactItems": [
                {"Delete": {"TableName": "pii-vault", "Key": PK, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
                {"Put": {"TableName": "pii-vault-erasures", "Item": {"lpk": {"S": "acme"}, "lsk": {"S": "x"}}}},
                {"Update": {"TableName": "pii-vault", "Key": PK, "UpdateExpression": "SET v = :v"}},
                {
                    "ConditionCheck": {
                        "TableName": "pii-vault",
                        "Key": PK,
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ],
            "ClientRequestToken": "t",
        },
    )
    assert [a.action for a in found] == [
        "dynamodb:DeleteItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:ConditionCheckItem",
    ]
    assert all(a.context["dynamodb:EnclosingOperation"] == "TransactWriteItems" for a in found)
    # No ReturnValues in a transaction item: the key stays absent (no alternative adds it).
    assert all(readings(a, "dynamodb:ReturnValues") == [None] for a in found)
    assert found[0].ungoverned == {"ReturnValuesOnConditionCheckFailure": "ALL_OLD", "ClientRequestToken": "present"}
    (get,) = derive("dynamodb", "TransactGetItems", {"TransactItems": [{"Get": {"TableName": "pii-vault", "Key": PK}}]})
    assert (get.action, get.context["dynamodb:EnclosingOperation"]) == ("dynamodb:GetItem", "TransactGetItems")


def test_partiql_and_unknown_tables_are_underivable_and_table_administration_is_by_table() -> None:
    with pytest.raises(Underivable):
        derive("dynamodb", "ExecuteStatement", {"Statement": "SELECT * FROM x"})
    with pytest.raises(Underivable):
        derive("dynamodb", "GetItem", {"TableName": "nope", "Key": PK})
    assert one("dynamodb", "DescribeTable", {"TableName": "pii-vault"}).resource == TABLE
    assert one("dynamodb", "ListTables", {}).resource == "*"


def test_stream_requests_are_authorized_on_the_stream() -> None:
    stream = TABLE + "/stream/2024-01-01T00:00:00.000"
    assert one("dynamodbstreams", "GetRecords", {"ShardIterator": stream + "|1|abc"}).resource == stream
    assert one("dynamodbstreams", "DescribeStream", {"StreamArn": stream}).action == "dynamodb:DescribeStream"
    assert one("dynamodbstreams", "ListStreams", {}).resource == "*"
    with pytest.raises(Underivable):
        one("dynamodbstreams", "GetRecords", {"ShardIterator": "opaque"})


# -- KMS -----------------------------------------------------------------------------------------


def test_encrypt_by_alias_is_authorized_on_the_key_with_context_alias_and_default_algorithm() -> None:
    access = one(
        "kms",
        "Encrypt",
        {
            "KeyId": "alias/pii-vault",
            "Plaintext": "AA==",
            "EncryptionContext": {"app": "pii-vault", "customer_id": "acme"},
        },
    )
    assert (access.action, access.resource) == ("kms:Encrypt", KEY_ARN)
    assert access.context["kms:EncryptionContext:customer_id"] == "acme"
    assert access.context["kms:EncryptionContextKeys"] == ["app", "customer_id"]
    assert access.context["kms:RequestAlias"] == "alias/pii-vault"
    assert access.context["aws:ResourceTag/app"] == "pii-vault"
    assert access.context["kms:ResourceAliases"] == ["alias/pii-vault"]
    assert access.context["kms:CallerAccount"] == ACCOUNT
    assert readings(access, "kms:EncryptionAlgorithm") == [None, "SYMMETRIC_DEFAULT"]
    assert access.facts["key"]["arn"] == KEY_ARN


def test_an_alias_arn_is_a_request_alias_and_a_key_arn_is_not() -> None:
    aliased = one("kms", "DescribeKey", {"KeyId": f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/pii-vault"})
    assert (aliased.resource, aliased.context["kms:RequestAlias"]) == (KEY_ARN, "alias/pii-vault")
    by_arn = one("kms", "Decrypt", {"KeyId": KEY_ARN, "CiphertextBlob": "Y2lwaGVy"})
    assert "kms:RequestAlias" not in by_arn.context
    assert "kms:EncryptionContextKeys" not in by_arn.context  # no context sent: both keys absent


def test_decrypt_without_key_id_is_authorized_on_the_key_in_the_ciphertext() -> None:
    assert one("kms", "Decrypt", {"CiphertextBlob": "Y2lwaGVy"}).resource == KEY_ARN
    with pytest.raises(Underivable):
        one("kms", "Decrypt", {"CiphertextBlob": "b3RoZXI="})


def test_generate_mac_names_its_algorithm_and_create_grant_its_operations() -> None:
    mac = one("kms", "GenerateMac", {"KeyId": KEY_ARN, "Message": "AA==", "MacAlgorithm": "HMAC_SHA_256"})
    assert mac.context["kms:MacAlgorithm"] == "HMAC_SHA_256"
    grant = one(
        "kms",
        "CreateGrant",
        {"KeyId": KEY_ARN, "GranteePrincipal": "arn:aws:iam::1:role/x", "Operations": ["Encrypt", "Decrypt"]},
    )
    assert grant.context["kms:GrantOperations"] == ["Decrypt", "Encrypt"]
    assert grant.context["kms:GranteePrincipal"] == "arn:aws:iam::1:role/x"


def test_reencrypt_is_two_authorizations_each_under_both_contexts() -> None:
    source, target = (
        {"app": "pii-vault", "customer_id": "acme"},
        {"app": "pii-vault", "customer_id": "acme", "view": "masked"},
    )
    from_, to = derive(
        "kms",
        "ReEncrypt",
        {
            "CiphertextBlob": "Y2lwaGVy",
            "SourceEncryptionContext": source,
            "DestinationKeyId": OTHER_ARN,
            "DestinationEncryptionContext": target,
        },
    )
    assert (from_.action, from_.resource, to.action, to.resource) == (
        "kms:ReEncryptFrom",
        KEY_ARN,
        "kms:ReEncryptTo",
        OTHER_ARN,
    )
    assert from_.context["kms:ReEncryptOnSameKey"] == "false"
    for half in (from_, to):
        assert readings(half, "kms:EncryptionContextKeys") == [["app", "customer_id"], ["app", "customer_id", "view"]]
    assert to.context["aws:ResourceTag/pii-vault-tenant"] == "acme"


def test_an_unknown_key_is_underivable_and_alias_operations_name_alias_and_key() -> None:
    with pytest.raises(Underivable):
        one("kms", "Encrypt", {"KeyId": "alias/unknown", "Plaintext": "AA=="})
    found = derive("kms", "CreateAlias", {"AliasName": "alias/x", "TargetKeyId": KEY_ARN})
    assert [a.resource for a in found] == [f"arn:aws:kms:*:{ACCOUNT}:alias/x", KEY_ARN]


def test_other_services_are_recorded_by_action_on_any_resource() -> None:
    assert one("iam", "CreateUser", {}).to_json()["action"] == "iam:CreateUser"


# -- capture and principals ----------------------------------------------------------------------


def test_moto_ciphertext_names_its_key_in_its_first_36_bytes() -> None:
    key_id = "11111111-2222-3333-4444-555555555555"
    assert _ciphertext_key(base64.b64encode(key_id.encode() + b"\x00" * 40).decode()) == key_id
    assert _ciphertext_key("not base64!") is None


def test_a_request_survives_its_json_line() -> None:
    request = Request("PIIVWRITER0000000000", "kms", "Encrypt", derive("kms", "Encrypt", {"KeyId": KEY_ARN}), test="t")
    assert Request.from_json(request.to_json()) == request


def test_each_principal_has_its_own_access_key_of_the_shape_moto_reads() -> None:
    keys = {p: principals.access_key_id(p) for p in (*STAGE_NAMES, principals.OPERATOR)}
    assert len(set(keys.values())) == len(keys)
    assert all(len(k) == 20 and k.isalnum() and k.isupper() for k in keys.values())
    assert {principals.principal_of(k) for k in keys.values()} == set(keys)
    assert principals.principal_of("AKIAEXAMPLE") is None
    with pytest.raises(ValueError):
        principals.access_key_id("stranger")
