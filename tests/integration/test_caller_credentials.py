"""The tenant-scoped credentials example of docs/callers.md, run against moto's IAM and STS.

moto does not enforce trust or identity policies, so this proves the shape of the calls
(the generated documents are accepted, botocore accepts the tag parameters) and that the
session ARN STS hands out is the one tests/policy_eval.py models; the decisions themselves
are proved in tests/unit/test_caller_access.py.
"""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from infra.iam import callers as access
from tests.policy_eval import ALLOW, EXPLICIT_DENY, IMPLICIT_DENY, Caller, authorize, role_session

pytestmark = pytest.mark.integration

TAG = access.TENANT_TAG


@pytest.mark.usefixtures("aws_env")
def test_given_the_generated_documents_when_a_backend_assumes_a_tenant_role_then_its_session_is_scoped() -> None:
    with mock_aws():
        iam = boto3.client("iam")
        account = boto3.client("sts").get_caller_identity()["Account"]
        backend = iam.create_role(
            RoleName="pii-vault-backend",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )["Role"]["Arn"]
        api = f"arn:aws:execute-api:us-east-1:{account}:r1a2b3c4d5/api"
        role = iam.create_role(
            RoleName="pii-vault-reader-caller-tenant",
            AssumeRolePolicyDocument=json.dumps(access.tenant_trust_policy([backend])),
        )["Role"]["Arn"]
        caller_policy = access.caller_policy("reader", "tenant", api)
        iam.put_role_policy(
            RoleName="pii-vault-reader-caller-tenant", PolicyName="invoke", PolicyDocument=json.dumps(caller_policy)
        )

        # The snippet of docs/callers.md.
        answer = boto3.client("sts").assume_role(
            RoleArn=role,
            RoleSessionName="backend-acme",
            DurationSeconds=900,
            Tags=[{"Key": TAG, "Value": "acme"}],
            TransitiveTagKeys=[TAG],
        )
        creds = answer["Credentials"]
        assert creds["SessionToken"] and creds["AccessKeyId"] != "testing"

    session = role_session(role, "backend-acme", {TAG: "acme"})
    assert session.arn == answer["AssumedRoleUser"]["Arn"]
    allow_list = access.api_resource_policy("reader", [role])

    def decide(tenant: str, caller: Caller = session) -> str:
        return authorize(
            "execute-api:Invoke",
            f"{api}/GET/customers/{tenant}/people",
            caller,
            identity_policies=[caller_policy],
            resource_policy=allow_list,
        )

    assert decide("acme") == ALLOW
    assert decide("globex") == IMPLICIT_DENY
    assert decide("acme", role_session(backend)) == EXPLICIT_DENY
