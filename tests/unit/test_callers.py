"""The allow-list's settings (PII_VAULT_ALLOWED_CALLERS, PII_VAULT_LOCAL_CALLER) and matching."""

from __future__ import annotations

import pytest

from chalicelib.api.callers import AllowList
from chalicelib.stages import settings_for
from chalicelib.support.errors import ConfigurationError

ROLE = "arn:aws:iam::111122223333:role/app"
LOCAL = "arn:aws:sts::000000000000:assumed-role/pii-vault-local-caller/devstack"
LAMBDA = {
    "AWS_LAMBDA_FUNCTION_NAME": "pii-vault-reader",
    "PII_VAULT_KMS_KEY_ID": "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, ()),
        ("", ()),
        ("  ", ()),
        (ROLE, (ROLE,)),
        (
            f" {ROLE} , arn:aws:iam::111122223333:role/team/a/b-c_d.e@f=g+h ",
            (ROLE, "arn:aws:iam::111122223333:role/team/a/b-c_d.e@f=g+h"),
        ),
        ("arn:aws-us-gov:iam::111122223333:role/app", ("arn:aws-us-gov:iam::111122223333:role/app",)),
    ],
)
def test_given_the_allowed_callers_setting_then_it_is_a_tuple_of_role_arns(
    raw: str | None, expected: tuple[str, ...]
) -> None:
    env = {"PII_VAULT_ROLE": "reader"} | ({} if raw is None else {"PII_VAULT_ALLOWED_CALLERS": raw})

    assert settings_for(env).allowed_callers == expected


@pytest.mark.parametrize(
    "raw",
    [
        f"{ROLE},",
        f"{ROLE},,{ROLE}",
        "arn:aws:iam::111122223333:user/app",
        "arn:aws:sts::111122223333:assumed-role/app/session",
        "arn:aws:iam::11112222333:role/app",
        "arn:aws:iam::111122223333:role/",
        "arn:aws:iam::111122223333:role/app*",
        "*",
        "app",
    ],
)
def test_given_an_allowed_callers_entry_that_is_not_a_role_arn_then_startup_fails(raw: str) -> None:
    with pytest.raises(ConfigurationError, match="PII_VAULT_ALLOWED_CALLERS"):
        settings_for({"PII_VAULT_ROLE": "reader", "PII_VAULT_ALLOWED_CALLERS": raw})


def test_given_a_local_caller_outside_lambda_then_it_is_read() -> None:
    env = {"PII_VAULT_ROLE": "reader", "PII_VAULT_LOCAL_CALLER": LOCAL}

    assert settings_for(env).local_caller == LOCAL
    assert settings_for({"PII_VAULT_ROLE": "reader"}).local_caller is None


def test_given_a_local_caller_in_lambda_then_startup_fails() -> None:
    """A deployed function takes its caller from the IAM authorizer only, never from its configuration."""
    env = {"PII_VAULT_ROLE": "reader", "PII_VAULT_LOCAL_CALLER": LOCAL, **LAMBDA}

    with pytest.raises(ConfigurationError, match="PII_VAULT_LOCAL_CALLER"):
        settings_for(env)
    assert settings_for({"PII_VAULT_ROLE": "reader", **LAMBDA}).local_caller is None


@pytest.mark.parametrize("raw", [ROLE, "arn:aws:iam::000000000000:user/dev", "anonymous"])
def test_given_a_local_caller_that_is_not_an_assumed_role_arn_then_startup_fails(raw: str) -> None:
    with pytest.raises(ConfigurationError, match="PII_VAULT_LOCAL_CALLER"):
        settings_for({"PII_VAULT_ROLE": "reader", "PII_VAULT_LOCAL_CALLER": raw})


@pytest.mark.parametrize(
    ("listed", "principal", "permitted"),
    [
        (ROLE, "arn:aws:sts::111122223333:assumed-role/app/s1", True),
        ("arn:aws:iam::111122223333:role/a/b/app", "arn:aws:sts::111122223333:assumed-role/app/s1", True),
        (ROLE, "arn:aws:sts::111122223333:assumed-role/App/s1", False),
        (ROLE, "arn:aws:sts::111122223333:assumed-role/app2/s1", False),
        (ROLE, "arn:aws:sts::444455556666:assumed-role/app/s1", False),
        (ROLE, "arn:aws-cn:sts::111122223333:assumed-role/app/s1", False),
        (ROLE, ROLE, False),
        (ROLE, "arn:aws:iam::111122223333:user/app", False),
        (ROLE, "", False),
        (ROLE, None, False),
    ],
)
def test_given_a_principal_then_only_sessions_of_listed_roles_are_permitted(
    listed: str, principal: str | None, permitted: bool
) -> None:
    assert AllowList([listed]).permits(principal) is permitted


def test_given_an_empty_list_then_nobody_is_permitted() -> None:
    assert not AllowList([]).permits("arn:aws:sts::111122223333:assumed-role/app/s1")
