"""The base stack's function roles: one per stage, with the stage's generated policy
(``infra.iam.stage_policy`` for this stack's ARNs) and the X-Ray tracing policy.

The roles' policies are separate ``AWS::IAM::Policy`` resources, so that key -> role (the key
policy names the role) and policy -> key (the policy names the key) form no cycle.
"""

from __future__ import annotations

from chalicelib.stages import STAGES
from infra.cfn import APP, Resource, Template, app_tags, getatt, ref
from infra.iam import StackArns, stage_policy, tracing_policy


def role_id(stage_name: str) -> str:
    """The logical id of a stage's role (``WriterRole``), exported as ``<id>Arn``."""
    return f"{stage_name.capitalize()}Role"


def lambda_role() -> Resource:
    """A role Lambda may assume, for functions of this account only."""
    return Resource(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                        "Condition": {"StringEquals": {"aws:SourceAccount": ref("AWS::AccountId")}},
                    }
                ],
            },
            "Tags": app_tags(),
        },
    )


def add_roles(template: Template) -> None:
    arns = StackArns()
    for stage in STAGES:
        title, role = stage.name.capitalize(), role_id(stage.name)
        template.add(role, lambda_role())
        template.add(
            f"{title}Policy",
            Resource(
                "AWS::IAM::Policy",
                {
                    "PolicyName": f"{APP}-{stage.name}",
                    "PolicyDocument": stage_policy(stage.name, arns),
                    "Roles": [ref(role)],
                },
            ),
        )
        template.add(
            f"{title}TracingPolicy",
            Resource(
                "AWS::IAM::Policy",
                {"PolicyName": f"{APP}-{stage.name}-tracing", "PolicyDocument": tracing_policy(), "Roles": [ref(role)]},
            ),
        )
        template.output(f"{role}Arn", getatt(role))
