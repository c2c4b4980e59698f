"""app.py as Lambda loads it: every function of every stage resolves to a callable of the module.

``chalice package`` names each function's handler ``app.<name>`` (``app.app`` for an API stage's
routes; tests/integration/test_package.py holds the templates to that); the Lambda Python runtime
imports ``app`` and takes the attribute. A job stage whose functions exist only on the Chalice
object would fail every invocation with ``Runtime.HandlerNotFound``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib.stages import STAGES, Stage, Trigger
from tools.devstack import local_environment

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
RESOURCES = {
    "table_name": "pii-vault",
    "key_arn": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/11111111-2222-3333-4444-555555555555",
    "fleet_mac_key_arn": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/22222222-2222-3333-4444-555555555555",
    "beacon_key_arn": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/33333333-2222-3333-4444-555555555555",
    "stream_arn": f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/pii-vault/stream/2026-12-06T00:00:00.000",
}
RESOLVE = """
import json, sys
import app
names = json.loads(sys.argv[1])
print(json.dumps({name: callable(getattr(app, name, None)) for name in names}))
"""


def _lambda_env(stage: Stage) -> dict[str, str]:
    """The stage's variables as its template gives them (the local stack's, without the local-only ones)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PII_VAULT_", "AWS_ENDPOINT_URL"))}
    local_only = {v.env for v in stage.variables} - {v.env for v in stage.deployed_variables}
    env.update({k: v for k, v in local_environment(stage, RESOURCES).items() if k not in local_only})
    env.update(AWS_DEFAULT_REGION="us-east-1", PYTHONDONTWRITEBYTECODE="1")
    return env


@pytest.mark.parametrize("stage", STAGES, ids=[s.name for s in STAGES])
def test_given_a_stage_when_lambda_loads_app_py_then_every_function_handler_resolves(stage: Stage) -> None:
    handlers = ["app" if f.trigger is Trigger.HTTP else f.name for f in stage.functions]

    result = subprocess.run(
        [sys.executable, "-c", RESOLVE, json.dumps(handlers)],
        cwd=ROOT,
        env=_lambda_env(stage),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr[-1500:]
    assert json.loads(result.stdout) == dict.fromkeys(handlers, True)


def test_given_a_stage_without_a_declared_function_then_lambda_handlers_refuses_to_start() -> None:
    from chalice import Chalice

    from chalicelib.stages.app import lambda_handlers
    from chalicelib.support.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="registers no function 'offboard'"):
        lambda_handlers(Chalice(app_name="pii-vault"), "offboard")
