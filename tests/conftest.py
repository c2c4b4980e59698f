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
)

_TIERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        for tier in _TIERS:
            if tier in parts:
                item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(autouse=True, scope="session")
def _moto_answers_as_aws() -> None:
    """In-process moto (integration tier) answers as KMS does, like the local stack's server."""
    from tools.moto_fidelity import install

    install()
