"""The project and its two stages, as the benchmark sees them."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
STAGES = ("writer", "reader")


def stage_environment(stage: str) -> dict[str, str]:
    """The stage's variables of .chalice/config.json (its role; every other setting at its default,
    as the stage stacks' parameters default to)."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text(encoding="utf-8"))
    return {**config.get("environment_variables", {}), **config["stages"][stage]["environment_variables"]}
