"""Create the keys and tables of a local pii-vault environment on moto, and print their ARNs.

For the local stack (``make dev``), the tests and the benchmark only; a real account gets its
keys, tables and roles from the base stack (``python -m infra package``, docs/deploy.md).
Both come from the same specs (``infra.specs``); ``infra.local`` does the work and says what
it hardens. Idempotent: a second run changes nothing that is already right.

    . .dev/tools.env    # make dev's region and credentials (any will do for moto)
    python -m tools.bootstrap --endpoint-url http://127.0.0.1:5000 --admin-arn ARN

It creates what is missing on that endpoint, gives each key the admin-only key policy for
this administrator if its policy names another, and prints the ARNs as JSON; it writes no
file (account-specific ARNs never go into the checkout). The key administrator defaults to
the caller (``sts:GetCallerIdentity``) when that is a role or an assumed role; moto's caller
is an IAM user, which is refused, so against moto pass ``--admin-arn``.
"""

from __future__ import annotations

import argparse
import json
import sys

from infra.cfn import APP
from infra.local import BootstrapError, bootstrap


def admin_from_caller(caller_arn: str) -> str:
    """The IAM principal behind ``sts:GetCallerIdentity``: an assumed-role session maps to
    its role (without a path; pass ``--admin-arn`` for roles with paths)."""
    parts = caller_arn.split(":", 5)
    if len(parts) == 6 and parts[2] == "sts" and parts[5].startswith("assumed-role/"):
        role = parts[5].split("/")[1]
        return f"arn:{parts[1]}:iam::{parts[4]}:role/{role}"
    if len(parts) == 6 and parts[2] == "iam" and parts[5].startswith(("user/", "role/")):
        return caller_arn
    raise BootstrapError(f"cannot use {caller_arn} as the key administrator (root or federated?); pass --admin-arn")


def main(argv: list[str] | None = None) -> int:
    import boto3  # here, not at import time: importing this module must stay cheap
    from botocore.exceptions import BotoCoreError, ClientError

    parser = argparse.ArgumentParser(prog="python -m tools.bootstrap", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--endpoint-url", help="e.g. http://127.0.0.1:5000 for a moto server")
    parser.add_argument("--region", help="defaults to the AWS SDK's configuration")
    parser.add_argument("--name", default=APP, help="base name of the tables and key aliases (default: %(default)s)")
    parser.add_argument("--admin-arn", help="key administrator (IAM role/user ARN); default: the caller")
    args = parser.parse_args(argv)

    changes: list[str] = []
    try:
        session = boto3.session.Session(region_name=args.region)
        admin = args.admin_arn or admin_from_caller(
            session.client("sts", endpoint_url=args.endpoint_url).get_caller_identity()["Arn"]
        )
        result = bootstrap(
            session.client("kms", endpoint_url=args.endpoint_url),
            session.client("dynamodb", endpoint_url=args.endpoint_url),
            base=args.name,
            admin_arn=admin,
            changes=changes,
        )
    except (BotoCoreError, ClientError, BootstrapError, ValueError, OSError) as exc:
        print(f"bootstrap failed: {exc}", file=sys.stderr)
        return 1
    for line in changes or ["nothing to change"]:
        print(f"bootstrap: {line}", file=sys.stderr)
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
