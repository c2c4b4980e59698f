"""The environment of one stage on the local stack, as shell exports: ``chalice local`` by hand.

    make dev                                                  # moto on :5000 (PII_VAULT_MOTO_PORT)
    eval "$(.venv/bin/python -m tools.localenv --stage reader)"
    .venv/bin/chalice local --stage reader --port 8012

The variables are exactly those ``make dev`` gives the stage (``tools.devstack.local_environment``:
the registry's, filled with the local stack's tables and key ARNs, the tunables at their defaults,
the local caller standing in for the IAM authorizer), plus moto's endpoint, fake credentials and
the region. The tables and keys are looked up (``infra.local.bootstrap``: idempotent, it creates
only what a fresh moto lacks), so the stage reads and writes the same data as ``make dev``'s.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from chalicelib.stages import STAGE_NAMES, registry
from infra.local import BootstrapError, bootstrap
from tools.devstack import FAKE_CREDENTIALS, REGION, local_environment


def environment(stage: str, moto_url: str) -> dict[str, str]:
    import boto3

    session = boto3.session.Session(
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
        region_name=REGION,
    )
    resources = bootstrap(
        session.client("kms", endpoint_url=moto_url), session.client("dynamodb", endpoint_url=moto_url)
    )
    env = {**FAKE_CREDENTIALS, "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "AWS_ENDPOINT_URL": moto_url}
    env.update(local_environment(registry.stage(stage), resources))
    return env


def main(argv: list[str] | None = None) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    parser = argparse.ArgumentParser(prog="python -m tools.localenv", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--stage", required=True, choices=STAGE_NAMES)
    port = os.environ.get("PII_VAULT_MOTO_PORT", "5000")
    parser.add_argument("--moto-url", default=f"http://127.0.0.1:{port}", help="default: make dev's (%(default)s)")
    args = parser.parse_args(argv)
    try:
        env = environment(args.stage, args.moto_url)
    except (BotoCoreError, ClientError, BootstrapError) as exc:
        print(f"localenv: no local stack at {args.moto_url} ({exc}); start `make dev` first", file=sys.stderr)
        return 1
    for name, value in env.items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
