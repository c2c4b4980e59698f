"""One environment, one deploy path: the guards between ``chalice deploy`` and the stage stacks.

Chalice's docs: an app is deployed either by ``chalice deploy`` or by ``chalice package`` +
CloudFormation, not switched between them. Both paths name the functions alike
(``pii-vault-<env>-<stage>[-<function>]``), and ``chalice deploy`` takes over any function of
that name (it updates a function it finds instead of creating one), so a ``chalice deploy`` into
an environment with stage stacks would silently re-point functions CloudFormation owns; the
other way, CloudFormation would fail on functions that already exist, after creating the rest.

- ``refuse_chalice_deploy``: any stage stack of the environment exists (``pii-vault-<env>-<stage>``),
  or a function of the environment belongs to a CloudFormation stack;
- ``refuse_package_deploy``: a function of the environment was deployed by ``chalice deploy``
  (its ``aws-chalice`` tag names the project's stage, ``stage=<env>-<stage>``; a packaged function's
  names the checkout's, ``stage=<stage>``).

The base stack is shared by both paths and checked by neither.
"""

from __future__ import annotations

from typing import Any

from chalicelib.stages import STAGES
from infra.arns import function_name
from infra.cfn import APP

CHALICE_TAG = "aws-chalice"
STACK_TAG = "aws:cloudformation:stack-name"  # CloudFormation tags every resource it creates with its stack


class GuardError(RuntimeError):
    """The environment is deployed by the other path."""


def stage_stack(env: str, stage_name: str) -> str:
    return f"{APP}-{env}-{stage_name}"


def base_stack(env: str) -> str:
    return f"{APP}-{env}-base"


def existing_stage_stacks(cloudformation: Any, env: str) -> list[str]:
    """The environment's stage stacks that exist (any state but DELETE_COMPLETE)."""
    found = []
    for entry in STAGES:
        name = stage_stack(env, entry.name)
        try:
            (stack,) = cloudformation.describe_stacks(StackName=name)["Stacks"]
        except cloudformation.exceptions.ClientError as exc:
            if "does not exist" in str(exc):
                continue
            raise
        if stack["StackStatus"] != "DELETE_COMPLETE":
            found.append(name)
    return found


def environment_functions(lambda_client: Any, env: str) -> dict[str, dict[str, str]]:
    """The environment's functions that exist: name -> tags."""
    found = {}
    for entry in STAGES:
        for function in entry.functions:
            name = function_name(entry.name, function.name, f"{APP}-{env}")
            try:
                arn = lambda_client.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
            except lambda_client.exceptions.ResourceNotFoundException:
                continue
            found[name] = lambda_client.list_tags(Resource=arn).get("Tags", {})
    return found


def chalice_deployed(tags: dict[str, str], env: str) -> bool:
    """Whether ``chalice deploy`` of the generated project (stage ``<env>-<stage>``) made the function."""
    return any(f":stage={env}-{entry.name}:" in tags.get(CHALICE_TAG, "") for entry in STAGES)


def refuse_chalice_deploy(cloudformation: Any, lambda_client: Any, env: str) -> None:
    stacks = existing_stage_stacks(cloudformation, env)
    if stacks:
        raise GuardError(
            f"{env} is deployed by CloudFormation (stacks {', '.join(stacks)}): chalice deploy would take over "
            "their functions. Deploy it by the package path, or delete those stacks first (docs/deploy.md)."
        )
    owned = sorted(name for name, tags in environment_functions(lambda_client, env).items() if STACK_TAG in tags)
    if owned:
        raise GuardError(f"{env}: functions {', '.join(owned)} belong to a CloudFormation stack; not deploying there")


def refuse_package_deploy(lambda_client: Any, env: str) -> None:
    functions = environment_functions(lambda_client, env)
    deployed = sorted(name for name, tags in functions.items() if chalice_deployed(tags, env))
    if deployed:
        raise GuardError(
            f"{env} is deployed by chalice deploy (functions {', '.join(deployed)}): delete them with "
            f"`chalice delete --stage {env}-<stage>` from .deploy/{env} first, or keep that path (docs/deploy.md)."
        )
