"""The deploy docs against the stage registry: every stage in every deploy and teardown loop, in
the stack tables, on both paths, with the names its functions get (a stage added to the
registry and missing from the docs fails here)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chalicelib.stages import STAGE_NAMES, STAGES
from infra.arns import function_name

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
GUIDE = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end > 0 else None]


def _rows(table_text: str) -> dict[str, str]:
    """First cell (backticks and spaces stripped) -> the whole row, for every table row."""
    rows = {}
    for line in table_text.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            rows[line.split("|")[1].strip().replace("`", "")] = line
    return rows


def test_given_the_deploy_guide_then_every_loop_covers_every_stage_of_the_registry() -> None:
    loops = re.findall(r"for stage in ([a-z ]+); do", GUIDE)

    assert loops, "no deploy loop"
    for loop in loops:
        assert tuple(loop.split()) == STAGE_NAMES


def test_given_the_guide_then_its_stack_table_has_every_stage_on_both_paths_with_its_functions() -> None:
    rows = _rows(_section(GUIDE, "## The stacks and stages"))

    assert set(rows) - {"stack / stage"} == {"base", *STAGE_NAMES}
    for entry in STAGES:
        row = rows[entry.name]
        assert f"stack `pii-vault-<env>-{entry.name}` (`out/{entry.name}/sam.json`)" in row
        assert f"`chalice deploy --stage <env>-{entry.name}`" in row
        for function in entry.functions:
            assert f"`{function_name(entry.name, function.name, 'pii-vault-<env>')}`" in row, (entry.name, function)
        if entry.kind == "api":
            assert f"REST API `pii-vault-<env>-{entry.name}`" in row
        else:
            assert "no API" in row


def test_given_the_readme_then_its_deploy_part_names_both_paths_and_what_they_need_and_points_to_the_guide() -> None:
    deploying = _section(README, "## Deploying")

    assert "package + CloudFormation" in deploying and "`chalice deploy`" in deploying
    assert "AWS CLI" in deploying and "artifact bucket" in deploying
    assert "(docs/deploy.md)" in deploying


def test_given_the_guide_then_both_paths_run_every_stage_and_the_measured_reasons_against_cdk_are_given() -> None:
    assert "chalice deploy --stage $ENV-$stage" in GUIDE
    assert "python -m infra post-deploy" in GUIDE
    assert "AWS CLI" in GUIDE and "artifact bucket" in GUIDE
    assert "540 MB" in _section(GUIDE, "## Why not") and "Node 22" in GUIDE  # measured, not "no Node toolchain"
