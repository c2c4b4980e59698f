"""The project and its stages, as the benchmark sees them: every list and every environment comes
from the stage registry (``chalicelib.stages``), never from a list of its own."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from chalicelib.stages import STAGES, Stage, stage

ROOT = Path(__file__).resolve().parents[1]
REGION = "us-east-1"

__all__ = ["REGION", "ROOT", "STAGES", "Stage", "stage", "stage_environment"]


def stage_environment(name: str, resources: Mapping[str, str]) -> dict[str, str]:
    """A stage's variables on the local stack (``tools.devstack.local_environment``): exactly the
    settings the stage declares in the registry, its tables and keys from ``resources`` (what the
    bootstrap made), tunables at their shipped defaults."""
    from tools.devstack import local_environment

    return local_environment(stage(name), resources)


def deployed_environment(name: str, resources: Mapping[str, str]) -> dict[str, str]:
    """As ``stage_environment``, without the local-only variables a deployed function never gets
    (the local caller: a deployed function refuses to start with it)."""
    local_only = {v.env for v in stage(name).variables if v not in stage(name).deployed_variables}
    return {k: v for k, v in stage_environment(name, resources).items() if k not in local_only}
