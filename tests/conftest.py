"""Marks each test with its tier from the folder it lives in; runs the plaintext guard."""

from __future__ import annotations

from pathlib import Path

import pytest

# The session-wide no-plaintext guard (tests/plaintext_guard.py): its hooks, re-exported
# here because pytest_plugins is only honoured in a rootdir conftest.
from tests.plaintext_guard import (  # noqa: F401
    pytest_configure,
    pytest_runtest_setup,
    pytest_sessionfinish,
    pytest_terminal_summary,
    pytest_testnodedown,
)

_TIERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        for tier in _TIERS:
            if tier in parts:
                item.add_marker(getattr(pytest.mark, tier))
        if "e2e" in parts:
            # One local stack for the e2e tier: under `pytest -n` (make test) its tests share a
            # worker (--dist loadgroup) instead of each worker starting a stack of its own.
            item.add_marker(pytest.mark.xdist_group("e2e"))


@pytest.fixture(autouse=True, scope="session")
def _lambda_context_with_the_functions_timeout() -> None:
    """chalice.test.Client invokes a function with a context of 3 s whatever its timeout; Lambda
    gives the function's configured timeout (the registry's), which the jobs' deadlines read."""
    import chalice.test
    from chalice.local import LambdaContext

    from chalicelib.stages import STAGES

    timeouts = {f.name: f.timeout_seconds * 1000 for s in STAGES for f in s.functions}

    class _Context(LambdaContext):
        def __init__(self, function_name: str, memory_size: int, max_runtime_ms: int | None = None) -> None:
            super().__init__(function_name, memory_size, max_runtime_ms or timeouts.get(function_name, 3000))

    chalice.test.LambdaContext = _Context  # type: ignore[misc]


@pytest.fixture(autouse=True, scope="session")
def _moto_answers_as_aws() -> None:
    """In-process moto (integration tier) answers as KMS does, like the local stack's server."""
    from tools.moto_fidelity import install

    install()
