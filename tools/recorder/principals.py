"""Credentials per principal for local runs: the access key id names the principal.

On AWS each stage's function signs with its own role's credentials, so every request names
the stage that sent it. Locally the same holds when each stage gets an access key id of its
own: ``chalice local`` processes, the stream poller and job runs of the local stack get
their stage's (tools/devstack.py), the integration tests build each stage's clients with
them (``stage_session``), and setup code (bootstrap, seeding, tampering) signs as the
operator. moto accepts any access key id; it reads one of 20 characters [A-Z0-9].
"""

from __future__ import annotations

from typing import Any

from chalicelib.stages import STAGE_NAMES

OPERATOR = "operator"
_SECRET = "local-only-not-a-secret"  # noqa: S105 - moto checks no signature


def access_key_id(principal: str) -> str:
    """``PIIVWRITER0000000000`` for the writer stage, ``PIIVOPERATOR00000000`` for the operator."""
    if principal not in (*STAGE_NAMES, OPERATOR):
        raise ValueError(f"unknown principal {principal!r}")
    return ("PIIV" + principal.upper()).ljust(20, "0")


ACCESS_KEYS = {access_key_id(p): p for p in (*STAGE_NAMES, OPERATOR)}


def principal_of(access_key: str) -> str | None:
    """The stage (or ``operator``) an access key id belongs to; None for any other key."""
    return ACCESS_KEYS.get(access_key)


def environment(principal: str) -> dict[str, str]:
    """The AWS_* credential variables of ``principal`` (for a child process's environment)."""
    return {
        "AWS_ACCESS_KEY_ID": access_key_id(principal),
        "AWS_SECRET_ACCESS_KEY": _SECRET,
        "AWS_SESSION_TOKEN": f"local-{principal}",
    }


def stage_session(principal: str, region: str | None = None) -> Any:
    """A boto3 session signing as ``principal`` (clients made from it carry its access key)."""
    import boto3

    creds = environment(principal)
    return boto3.session.Session(
        aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=creds["AWS_SESSION_TOKEN"],
        region_name=region,
    )
