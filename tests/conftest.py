"""Marks each test with its tier from the folder it lives in; runs the plaintext guard and the
recorded-request proof (tests/request_proof.py) for the whole session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests import plaintext_guard, request_proof

# The session-wide no-plaintext guard (tests/plaintext_guard.py): its hooks, re-exported
# here because pytest_plugins is only honoured in a rootdir conftest.
from tests.plaintext_guard import pytest_runtest_setup  # noqa: F401

# Every test's AWS requests, judged when it ends by the policies that govern them on AWS.
from tests.request_proof import judged_requests  # noqa: F401

_TIERS = ("unit", "integration", "e2e")


def pytest_configure(config: pytest.Config) -> None:
    plaintext_guard.pytest_configure(config)
    request_proof.install()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    plaintext_guard.pytest_sessionfinish(session, exitstatus)
    request_proof.sessionfinish(session)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    plaintext_guard.pytest_terminal_summary(terminalreporter)
    request_proof.terminal_summary(terminalreporter)


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
