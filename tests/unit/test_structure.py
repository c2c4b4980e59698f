"""The shape of the tree (issue 20): no import cycles, no module over the bound, stage lists only
in the registry and the infrastructure package. (Layers: `lint-imports`, pyproject.toml.)"""

from __future__ import annotations

import ast
from pathlib import Path

import grimp
import networkx as nx  # type: ignore[import-untyped]  # networkx ships no type information
import pytest

from chalicelib.stages import STAGE_NAMES

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = tuple(p for p in ("chalicelib", "tools", "bench", "infra") if (ROOT / p).is_dir())
MAX_MODULE_LINES = 400
# Where a list of stages may be written: the registry, and the templates it derives.
STAGE_LIST_HOMES = ("chalicelib/stages/", "infra/")
# The published client (clients/python) is a package of its own that cannot import the registry:
# its stage names (writer, reader, masked) are its public API, and its tests hold them equal to the registry's.
OWN_STAGE_NAMES = ("clients/",)


def _python_files(*, tests: bool = False) -> list[Path]:
    roots = [*PACKAGES, "clients"] + (["tests"] if tests else [])
    return [*sorted(p for d in roots for p in (ROOT / d).rglob("*.py") if ".venv" not in p.parts), ROOT / "app.py"]


def test_given_the_packages_then_no_module_imports_itself_through_others() -> None:
    """Type-checking imports included: a cycle there is still a cycle for mypy and for readers."""
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=False)
    edges = nx.DiGraph(
        (module, imported) for module in graph.modules for imported in graph.find_modules_directly_imported_by(module)
    )
    cycles = [sorted(component) for component in nx.strongly_connected_components(edges) if len(component) > 1]
    assert cycles == []


def test_given_any_module_outside_the_tests_then_it_has_at_most_the_bound_of_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): lines
        for path in _python_files()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def _stage_names_in(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Dict):
        elements = [key for key in node.keys if key is not None]
    elif isinstance(node, ast.List | ast.Tuple | ast.Set):
        elements = list(node.elts)
    else:
        return []
    return [
        e.value for e in elements if isinstance(e, ast.Constant) and isinstance(e.value, str) and e.value in STAGE_NAMES
    ]


@pytest.mark.parametrize("tests", [False, True], ids=["code", "tests"])
def test_given_the_code_then_only_the_registry_and_the_templates_spell_a_list_of_stages(tests: bool) -> None:
    """A literal collection naming two or more stages is a stage list: derive it from the registry."""
    found = []
    for path in _python_files(tests=tests):
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith(STAGE_LIST_HOMES + OWN_STAGE_NAMES) or (tests and not relative.startswith("tests/")):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.expr) and len(_stage_names_in(node)) >= (3 if tests else 2):
                found.append(f"{relative}:{node.lineno}")
    assert found == []
