"""Who reaches which stage and tenant: the generated caller policies, the tenant roles'
trust policy and the per-stage API resource policy, judged by tests/policy_eval.py.

Every route of both stages comes from the apps themselves (``create_app(role)`` and
``app.routes``), so a route added later is covered without touching this file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from chalicelib.domain import validation
from chalicelib.stages import API_STAGE_NAMES as ROLES
from chalicelib.stages.app import create_app
from chalicelib.support.config import Settings
from chalicelib.support.errors import ValidationError
from infra.arns import InvalidResourceError
from infra.iam import callers as iam_callers
from tests.policy_eval import (
    ALLOW,
    EXPLICIT_DENY,
    IMPLICIT_DENY,
    Caller,
    authorize,
    evaluate,
    iam_user,
    role_session,
)
from tools import access

pytestmark = pytest.mark.unit

ACCOUNT = "111122223333"
INVOKE = "execute-api:Invoke"
TAG = iam_callers.TENANT_TAG
API = {stage: f"arn:aws:execute-api:us-east-1:{ACCOUNT}:{stage[0]}1a2b3c4d5/api" for stage in ROLES}
# The masked stage's caller must not reach the reader (full values) either.
OTHER = {stage: "writer" if stage == "reader" else "reader" for stage in ROLES}


def _role(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


CALLER_ROLES = {
    (stage, scope): _role(f"pii-vault-{stage}-caller-{scope}") for stage in ROLES for scope in iam_callers.SCOPES
}
BACKEND = _role("pii-vault-backend")
ALLOW_LISTS = {stage: [CALLER_ROLES[stage, scope] for scope in iam_callers.SCOPES] for stage in ROLES}
RESOURCE_POLICIES = {stage: iam_callers.api_resource_policy(stage, ALLOW_LISTS[stage]) for stage in ROLES}
CALLER_POLICIES = {(stage, scope): iam_callers.caller_policy(stage, scope, API[stage]) for stage, scope in CALLER_ROLES}
TRUST = iam_callers.tenant_trust_policy([BACKEND])
TENANT_A, TENANT_B = "tenant-a", "tenant-b"
# Tenants sharing a prefix or a suffix with tenant-a, and one differing only in case.
NEIGHBOURS = (TENANT_B, "tenant-ab", "tenant-a-1", "tenant", "tenant-", "xtenant-a", "TENANT-A", "a", "_", "-")
# The STS API reference's Tag.Value pattern, [\p{L}\p{Z}\p{N}_.:/=+\-@]*, 0-256 characters.
STS_TAG_VALUE = re.compile(r"[\w\s.:/=+@-]{0,256}")
BROAD = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "execute-api:*", "Resource": "*"},
        {"Effect": "Allow", "Action": "*", "Resource": "arn:aws:execute-api:*:*:*"},
    ],
}


def _routes(stage: str) -> list[tuple[str, str]]:
    app = create_app(settings=Settings(role=stage))
    return sorted((method.upper(), path) for path, entries in app.routes.items() for method in entries)


ROUTES = {stage: _routes(stage) for stage in ROLES}


def _requests(stage: str, tenant: str) -> list[str]:
    """The execute-api ARN of every route of ``stage`` for ``tenant``: <api>/<stage>/METHOD/customers/T/..."""
    arns = []
    for method, path in ROUTES[stage]:
        concrete = path.replace("{customer_id}", tenant)
        concrete = re.sub(r"\{[a-z_]+\}", "0123456789abcdef0123456789abcdef", concrete)
        arns.append(f"{API[stage]}/{method}{concrete}")
    return arns


def _decide(
    caller: Caller,
    identity: dict[str, Any] | list[dict[str, Any]],
    stage: str,
    arn: str,
    resource_policy: dict[str, Any] | None = None,
) -> str:
    identities = identity if isinstance(identity, list) else [identity]
    policy = RESOURCE_POLICIES[stage] if resource_policy is None else resource_policy
    return authorize(INVOKE, arn, caller, identity_policies=identities, resource_policy=policy)


def _tenant_caller(stage: str, tenant: str | None) -> Caller:
    tags = {} if tenant is None else {TAG: tenant}
    return role_session(CALLER_ROLES[stage, "tenant"], "backend-request-42", tags)


def _allowed(caller: Caller, identity: Any, tenants: tuple[str, ...] = (TENANT_A, *NEIGHBOURS)) -> set[str]:
    """Every request (both stages, every route, each tenant) this caller is allowed."""
    return {
        arn
        for stage in ROLES
        for tenant in tenants
        for arn in _requests(stage, tenant)
        if _decide(caller, identity, stage, arn) == ALLOW
    }


def test_given_both_apps_then_every_route_is_under_a_tenant_and_both_stages_have_routes() -> None:
    for stage in ROLES:
        assert ROUTES[stage], stage
        assert all(path.startswith(iam_callers.ROUTE_PREFIX) for _, path in ROUTES[stage])
        # The collection route (no trailing segment) is part of what is proved below.
        assert any(path == "/customers/{customer_id}/people" for _, path in ROUTES[stage])


@pytest.mark.parametrize("stage", ROLES)
def test_given_a_caller_tagged_for_tenant_a_then_every_route_of_every_other_tenant_is_denied_on_both_stages(
    stage: str,
) -> None:
    caller = _tenant_caller(stage, TENANT_A)
    identity = CALLER_POLICIES[stage, "tenant"]

    for tenant in NEIGHBOURS:
        for target in ROLES:
            requests = _requests(target, tenant)
            decisions = {arn: _decide(caller, identity, target, arn) for arn in requests}
            assert len(decisions) == len(ROUTES[target]) > 0
            assert ALLOW not in decisions.values(), [arn for arn, d in decisions.items() if d == ALLOW]


@pytest.mark.parametrize("stage", ROLES)
def test_given_a_caller_tagged_for_tenant_a_then_every_route_of_tenant_a_on_its_own_stage_is_allowed(
    stage: str,
) -> None:
    caller = _tenant_caller(stage, TENANT_A)

    assert _allowed(caller, CALLER_POLICIES[stage, "tenant"]) == set(_requests(stage, TENANT_A))


@pytest.mark.parametrize("scope", iam_callers.SCOPES)
@pytest.mark.parametrize("stage", ROLES)
def test_given_a_caller_of_one_stage_then_no_route_of_the_other_stage_is_allowed(stage: str, scope: str) -> None:
    caller = role_session(CALLER_ROLES[stage, scope], tags={TAG: TENANT_A})
    identity = CALLER_POLICIES[stage, scope]
    other = OTHER[stage]

    for tenant in (TENANT_A, TENANT_B):
        for arn in _requests(other, tenant):
            # Not on the other stage's allow-list: the resource policy denies explicitly.
            assert _decide(caller, identity, other, arn) == EXPLICIT_DENY, arn
            # Even if it were listed there, its own policy names no route of the other API.
            listed = iam_callers.api_resource_policy(other, ALLOW_LISTS[other] + [CALLER_ROLES[stage, scope]])
            assert _decide(caller, identity, other, arn, listed) == IMPLICIT_DENY, arn


@pytest.mark.parametrize(
    "caller",
    [
        role_session(_role("some-admin"), tags={TAG: TENANT_A}),
        role_session(BACKEND),
        iam_user(f"arn:aws:iam::{ACCOUNT}:user/alice"),
        # Same role name as a listed role, under another path: a different role.
        role_session(f"arn:aws:iam::{ACCOUNT}:role/other/pii-vault-reader-caller-all-tenants"),
    ],
    ids=["role session", "backend role", "iam user", "same name other path"],
)
def test_given_an_unlisted_principal_with_invoke_on_everything_then_every_route_of_both_stages_is_denied(
    caller: Caller,
) -> None:
    for stage in ROLES:
        for tenant in (TENANT_A, TENANT_B):
            for arn in _requests(stage, tenant):
                assert _decide(caller, BROAD, stage, arn) == EXPLICIT_DENY, arn


def test_given_an_empty_allow_list_then_everyone_is_denied_even_with_invoke_on_everything() -> None:
    closed = {stage: iam_callers.api_resource_policy(stage, []) for stage in ROLES}
    callers = [role_session(arn, tags={TAG: TENANT_A}) for arn in CALLER_ROLES.values()]
    callers += [iam_user(f"arn:aws:iam::{ACCOUNT}:user/alice"), role_session(BACKEND)]

    for caller in callers:
        for stage in ROLES:
            for arn in _requests(stage, TENANT_A):
                assert (
                    _decide(caller, [BROAD, CALLER_POLICIES[stage, "all-tenants"]], stage, arn, closed[stage])
                    == EXPLICIT_DENY
                )


@pytest.mark.parametrize("stage", ROLES)
def test_given_an_assumed_role_session_of_a_listed_role_then_it_is_allowed_on_its_stage(stage: str) -> None:
    pathed = f"arn:aws:iam::{ACCOUNT}:role/teams/billing/pii-vault-{stage}-caller"
    policy = iam_callers.api_resource_policy(stage, [*ALLOW_LISTS[stage], pathed])
    identity = CALLER_POLICIES[stage, "all-tenants"]

    for role in (CALLER_ROLES[stage, "all-tenants"], pathed):
        caller = role_session(role, session_name="worker-7")
        assert caller.arn.startswith(f"arn:aws:sts::{ACCOUNT}:assumed-role/")
        for tenant in (TENANT_A, TENANT_B):
            for arn in _requests(stage, tenant):
                assert _decide(caller, identity, stage, arn, policy) == ALLOW, arn


@pytest.mark.parametrize(
    "tags", [None, {"Tenant": TENANT_A}, {"pii-vault-tenants": TENANT_A}], ids=["no tags", "other key", "similar key"]
)
@pytest.mark.parametrize("stage", ROLES)
def test_given_a_caller_without_the_tenant_tag_then_the_tenant_scoped_policy_allows_nothing(
    stage: str, tags: dict[str, str] | None
) -> None:
    caller = role_session(CALLER_ROLES[stage, "tenant"], tags=tags)

    assert _allowed(caller, CALLER_POLICIES[stage, "tenant"]) == set()


@pytest.mark.parametrize(
    "tag",
    [
        "tenant-a/..",
        "tenant-a/../tenant-b",
        "../tenant-b",
        "tenant-a/people",
        "tenant-a/secrets",
        "tenant-a/",
        "/",
        "",
        " ",
        ".",
        "tenant-a:tenant-b",
        "tenant-a@x",
        "tenant-a=",
    ],
)
def test_given_a_tenant_tag_with_a_slash_dots_or_other_separators_then_it_reaches_no_other_tenant(tag: str) -> None:
    """A '/' can only narrow: whatever such a tag reaches, the tenant before the '/' reaches too."""
    for stage in ROLES:
        identity = CALLER_POLICIES[stage, "tenant"]
        reached = _allowed(_tenant_caller(stage, tag), identity)
        prefix = tag.split("/")[0]
        within = _allowed(_tenant_caller(stage, prefix), identity) if prefix else set()
        assert reached <= within, sorted(reached - within)
        assert not any(
            f"/customers/{t}/" in arn or arn.endswith(f"/customers/{t}")
            for arn in reached
            for t in NEIGHBOURS
            if t != prefix
        )


@pytest.mark.parametrize("tag", ["*", "?*", "tenant-*", "*-b", "tenant-?", "t*", "${*}"])
def test_given_a_wildcard_in_a_tenant_tag_then_neither_sts_nor_the_trust_policy_issue_such_a_session(tag: str) -> None:
    # Worst case: the evaluator lets a substituted '*' act as a wildcard (IAM's documentation
    # does not say it is escaped). Under that reading such a tag WOULD reach tenant-b, which
    # is why it must never be issued:
    caller = _tenant_caller("reader", tag)
    if "*" in tag and tag != "${*}":
        assert _allowed(caller, CALLER_POLICIES["reader", "tenant"], (TENANT_B,)), "worst case not modelled"
    # 1. STS refuses it: Tag.Value must match [\p{L}\p{Z}\p{N}_.:/=+\-@]* (STS API reference).
    assert not STS_TAG_VALUE.fullmatch(tag)
    # 2. The trust policy refuses it, for AssumeRole and for TagSession.
    for action in ("sts:AssumeRole", "sts:TagSession"):
        assert _assume(tag, action) == EXPLICIT_DENY, action


def _assume(
    tenant: str | None,
    action: str = "sts:AssumeRole",
    *,
    principal: Caller | None = None,
    extra_tags: dict[str, str] | None = None,
    transitive: list[str] | None = None,
) -> str:
    caller = principal or role_session(BACKEND, "api-worker")
    tags = ({} if tenant is None else {TAG: tenant}) | (extra_tags or {})
    context = {**caller.context, **{f"aws:RequestTag/{k}": v for k, v in tags.items()}, "aws:TagKeys": list(tags)}
    if transitive is not None:
        context["sts:TransitiveTagKeys"] = transitive
    return evaluate(TRUST, action, None, context, principal=caller.arn)


@pytest.mark.parametrize("tenant", ["a", "tenant-a", "A_b-9", "x" * 64])
def test_given_a_valid_tenant_id_then_the_backend_may_assume_a_tenant_scoped_role_with_it(tenant: str) -> None:
    assert validation.customer_id(tenant) == tenant
    for action in ("sts:AssumeRole", "sts:TagSession"):
        assert _assume(tenant, action) == ALLOW
        assert _assume(tenant, action, transitive=[TAG]) == ALLOW


@pytest.mark.parametrize("tenant", ["", "x" * 65, "a/b", "a.b", "a:b", "a=b", "a+b", "a@b", "a b", " a", "a*", "a?"])
def test_given_a_tenant_tag_outside_the_tenant_id_alphabet_then_the_trust_policy_refuses_it(tenant: str) -> None:
    with pytest.raises(ValidationError):
        validation.customer_id(tenant)
    for action in ("sts:AssumeRole", "sts:TagSession"):
        assert _assume(tenant, action) == EXPLICIT_DENY, action


def test_given_no_tag_another_tag_or_another_principal_then_the_trust_policy_does_not_allow_it() -> None:
    assert _assume(None) == IMPLICIT_DENY
    assert _assume(None, "sts:TagSession", extra_tags={"team": "x"}) == IMPLICIT_DENY
    # A second tag, or a second transitive key, could feed other ABAC policies: refused.
    assert _assume(TENANT_A, "sts:TagSession", extra_tags={"team": "x"}) == IMPLICIT_DENY
    assert _assume(TENANT_A, "sts:TagSession", transitive=[TAG, "team"]) == IMPLICIT_DENY
    for stranger in (
        role_session(_role("intruder")),
        iam_user(f"arn:aws:iam::{ACCOUNT}:user/mallory"),
        role_session(CALLER_ROLES["reader", "tenant"], tags={TAG: TENANT_A}),
    ):
        for action in ("sts:AssumeRole", "sts:TagSession"):
            assert _assume(TENANT_A, action, principal=stranger) == IMPLICIT_DENY


def test_given_a_stage_wide_allow_in_the_resource_policy_then_tenant_scoping_would_be_lost() -> None:
    """Why api_resource_policy has no Allow: in one account a resource-policy Allow suffices alone."""
    stage = "reader"
    with_allow = iam_callers.api_resource_policy(stage, ALLOW_LISTS[stage])
    with_allow["Statement"].append(
        {"Effect": "Allow", "Principal": {"AWS": ALLOW_LISTS[stage]}, "Action": INVOKE, "Resource": "execute-api:/*"}
    )
    caller = _tenant_caller(stage, TENANT_A)
    arn = _requests(stage, TENANT_B)[0]

    assert _decide(caller, CALLER_POLICIES[stage, "tenant"], stage, arn, with_allow) == ALLOW
    assert _decide(caller, CALLER_POLICIES[stage, "tenant"], stage, arn) == IMPLICIT_DENY


def test_given_a_caller_from_another_account_then_its_own_allow_is_not_enough() -> None:
    stranger = "arn:aws:iam::444455556666:role/pii-vault-reader-caller-all-tenants"
    policy = iam_callers.api_resource_policy("reader", [stranger])
    caller = role_session(stranger)

    for arn in _requests("reader", TENANT_A):
        assert _decide(caller, CALLER_POLICIES["reader", "all-tenants"], "reader", arn, policy) == IMPLICIT_DENY


def test_given_the_api_resource_policy_then_it_has_one_deny_naming_the_sorted_allow_list() -> None:
    listed = [_role("b"), _role("a"), _role("a")]

    policy = iam_callers.api_resource_policy("writer", listed, "execute-api:/*")

    assert policy == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyCallersNotOnTheWriterAllowList",
                "Effect": "Deny",
                "Principal": "*",
                "Action": INVOKE,
                "Resource": "execute-api:/*",
                "Condition": {"ArnNotEquals": {"aws:PrincipalArn": [_role("a"), _role("b")]}},
            }
        ],
    }
    assert "Condition" not in iam_callers.api_resource_policy("reader", [])["Statement"][0]


@pytest.mark.parametrize(
    "bad",
    [
        "*",
        f"arn:aws:iam::{ACCOUNT}:root",
        f"arn:aws:sts::{ACCOUNT}:assumed-role/x/y",
        "arn:aws:iam::*:role/x",
        f"arn:aws:iam::{ACCOUNT}:role/x*",
    ],
)
def test_given_a_wildcard_root_or_session_principal_then_the_generators_refuse_it(bad: str) -> None:
    with pytest.raises(InvalidResourceError):
        iam_callers.api_resource_policy("writer", [bad])
    with pytest.raises(InvalidResourceError):
        iam_callers.tenant_trust_policy([bad])


def test_given_bad_arguments_then_the_generators_refuse_them() -> None:
    with pytest.raises(InvalidResourceError, match="stage"):
        iam_callers.api_resource_policy("admin", [])
    with pytest.raises(InvalidResourceError, match="stage"):
        iam_callers.caller_policy("admin", "tenant", API["writer"])
    with pytest.raises(InvalidResourceError, match="scope"):
        iam_callers.caller_policy("writer", "some-tenants", API["writer"])
    for api in ("arn:aws:execute-api:us-east-1:*:*/api", "arn:aws:execute-api:us-east-1:1:abc", "*"):
        with pytest.raises(InvalidResourceError, match="api_arn"):
            iam_callers.caller_policy("writer", "tenant", api)
    with pytest.raises(InvalidResourceError):
        iam_callers.tenant_trust_policy([])


def test_given_a_policy_for_cloudformation_then_only_iam_variables_are_escaped() -> None:
    api = "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${WriterApi}/api"
    document = iam_callers.cfn_sub(iam_callers.caller_policy("writer", "tenant", api, ["POST"]))

    (resource,) = document["Statement"][0]["Resource"]
    assert resource == {
        "Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:"
        "${WriterApi}/api/POST/customers/${!aws:PrincipalTag/pii-vault-tenant}/*"
    }
    assert document["Statement"][0]["Action"] == INVOKE
    assert iam_callers.cfn_sub({"v": "${*}x"}) == {"v": {"Fn::Sub": "${!*}x"}}


def test_given_the_committed_caller_policies_when_checked_then_they_are_current(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert access.main(["--check"]) == 0, capsys.readouterr().err


def test_given_a_stale_caller_policy_when_checked_then_check_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert access.main(["--out-dir", str(tmp_path)]) == 0
    assert access.main(["--out-dir", str(tmp_path), "--check"]) == 0
    target = tmp_path / "reader-caller-tenant.json"
    target.write_text(target.read_text().replace("GET", "POST"))

    assert access.main(["--out-dir", str(tmp_path), "--check"]) == 1
    assert "reader-caller-tenant.json" in capsys.readouterr().err


def test_given_deployed_api_arns_when_rendered_then_the_files_name_them(tmp_path: Path) -> None:
    args = ["--out-dir", str(tmp_path), "--api-arn", f"writer={API['writer']}", "--backend-arn", BACKEND]

    assert access.main(args) == 0
    assert API["writer"] in (tmp_path / "writer-caller-tenant.json").read_text()
    assert "<reader-api-id>" in (tmp_path / "reader-caller-tenant.json").read_text()
    assert access.main(["--out-dir", str(tmp_path), "--api-arn", "admin=x"]) == 2
