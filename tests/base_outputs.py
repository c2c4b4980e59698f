"""The outputs of a base stack in one environment, as ``describe-stacks`` would give them: every
output the base template declares, with a plausible value for an example account (or with the
ARNs a test created on moto, ``overrides``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from infra.base import base_template
from infra.specs import FAILURE_QUEUE, KEYS, STREAM_OUTPUT, TABLES

ACCOUNT = "111122223333"
REGION = "us-east-1"
ROOT = Path(__file__).resolve().parents[1]


def base_outputs(env: str, **overrides: str) -> dict[str, str]:
    outputs: dict[str, str] = {}
    keys = {spec.output for spec in KEYS.values()}
    tables = {spec.output: spec for spec in TABLES.values()}
    for index, name in enumerate(sorted(base_template().render()["Outputs"])):
        if name in keys:
            outputs[name] = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{index:08d}-1111-4111-8111-111111111111"
        elif name in tables:
            outputs[name] = tables[name].name(f"pii-vault-{env}")
        elif name == STREAM_OUTPUT:
            outputs[name] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/pii-vault-{env}/stream/2026-01-01T00:00:00.000"
        elif name == FAILURE_QUEUE.output:
            outputs[name] = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{FAILURE_QUEUE.name(f'pii-vault-{env}')}"
        elif name.endswith("RoleArn"):
            outputs[name] = f"arn:aws:iam::{ACCOUNT}:role/pii-vault-{env}-base-{name.removesuffix('Arn')}-X1"
        elif name.endswith("AccessLogGroupArn"):
            stage = name.removesuffix("AccessLogGroupArn").lower()
            outputs[name] = (
                f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/apigateway/pii-vault-{env}-{stage}-access:*"
            )
        else:
            raise AssertionError(f"no example value for the base stack's output {name}")
    return {**outputs, **overrides}


def params_dir(tmp_path: Path, env: str) -> Path:
    """A parameters directory holding ``deploy/params/example.json`` as ``<env>.json``."""
    directory = tmp_path / "params"
    directory.mkdir(exist_ok=True)
    shutil.copy(ROOT / "deploy" / "params" / "example.json", directory / f"{env}.json")
    return directory


def example_params() -> dict[str, dict[str, object]]:
    data: dict[str, dict[str, object]] = json.loads((ROOT / "deploy" / "params" / "example.json").read_text())
    return data
