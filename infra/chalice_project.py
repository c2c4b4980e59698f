"""An environment's Chalice project for ``chalice deploy``: ``.deploy/<env>/`` (untracked).

    .deploy/<env>/app.py, chalicelib, requirements.txt   links to the checkout's (the same code)
    .deploy/<env>/.chalice/config.json                   stages <env>-<stage> (infra.chalice_config)
    .deploy/<env>/.chalice/api-policy-<env>-<stage>.json the API stages' resource policies
    .deploy/<env>/.chalice/deployments                   link to the checkout's dependency cache
    .deploy/<env>/.chalice/deployed/<env>-<stage>.json   chalice deploy's record (kept on regeneration)

Every value comes from the base stack's outputs and ``deploy/params/<env>.json``, through
``infra.deployment`` (the merge templates, evaluated): the tracked files stay free of accounts and
environments. Regenerating rewrites the config and policies and leaves Chalice's records alone:
``chalice deploy`` and ``chalice delete`` find their resources through them (a REST API that lost
its record is created anew, not updated), so keep ``.chalice/deployed/`` as long as the stages live.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chalicelib.stages import STAGE_NAMES
from infra.cfn import TemplateError, render
from infra.chalice_config import environment_config, policy_file
from infra.chalice_config import render as render_config
from infra.deployment import StageDeployment, stage_deployment
from infra.guards import base_stack
from infra.params import PARAMS_DIR

ROOT = Path(__file__).resolve().parent.parent
DEPLOY_DIR = ROOT / ".deploy"
LINKED = ("app.py", "chalicelib", "requirements.txt")
READY = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE")


def base_outputs(cloudformation: Any, env: str) -> dict[str, str]:
    """The base stack's outputs (name -> value); the stack must be created or updated."""
    try:
        (stack,) = cloudformation.describe_stacks(StackName=base_stack(env))["Stacks"]
    except cloudformation.exceptions.ClientError as exc:
        raise TemplateError(f"no base stack {base_stack(env)}: {exc}") from None
    if stack["StackStatus"] not in READY:
        raise TemplateError(f"{base_stack(env)} is {stack['StackStatus']}; deploy the base stack first")
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


def deployments(
    env: str, outputs: dict[str, str], stages: Sequence[str] = STAGE_NAMES, params_dir: Path = PARAMS_DIR
) -> list[StageDeployment]:
    return [stage_deployment(name, env, outputs, params_dir) for name in stages]


def write_project(
    env: str,
    outputs: dict[str, str],
    *,
    out: Path = DEPLOY_DIR,
    params_dir: Path = PARAMS_DIR,
    root: Path = ROOT,
) -> Path:
    """``out/<env>/`` for every stage of the registry; returns the project directory."""
    project = out / env
    chalice_dir = project / ".chalice"
    chalice_dir.mkdir(parents=True, exist_ok=True)
    for name in LINKED:
        _link(project / name, root / name)
    cache = root / ".chalice" / "deployments"
    cache.mkdir(parents=True, exist_ok=True)
    _link(chalice_dir / "deployments", cache)  # the dependency zip depends on requirements.txt alone
    stages = deployments(env, outputs, params_dir=params_dir)
    for deployment in stages:
        if deployment.api is not None:
            (chalice_dir / policy_file(deployment)).write_text(render(deployment.api.resource_policy), encoding="utf-8")
    (chalice_dir / "config.json").write_text(render_config(environment_config(stages)), encoding="utf-8")
    return project


def _link(link: Path, target: Path) -> None:
    relative = os.path.relpath(target, link.parent)
    if link.is_symlink():
        if os.readlink(link) == relative:
            return
        link.unlink()
    elif link.exists():
        raise TemplateError(f"{link} exists and is not a link to {target}")
    link.symlink_to(relative, target_is_directory=target.is_dir())
