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


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """pytest-xdist's controller (make test): what each worker saw joins the session's."""
    plaintext_guard.pytest_testnodedown(node, error)
    request_proof.testnodedown(node)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    plaintext_guard.pytest_terminal_summary(terminalreporter)
    request_proof.terminal_summary(terminalreporter)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        for tier in _TIERS:
            if tier in parts:
                item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(autouse=True)
def _a_fresh_container_per_test() -> None:
    """The stages' one botocore session per container (chalicelib.stages.app) resolves its
    credentials once; each test is a new container, so an app built from the environment signs
    with the credentials the test gives it (a stage's own, tests/request_proof.py)."""
    from chalicelib.stages import app

    app._session.cache_clear()


@pytest.fixture(autouse=True, scope="session")
def _lambda_context_with_the_functions_timeout() -> None:
    """chalice.test.Client invokes a function with a context of 3 s whatever its timeout; Lambda
    gives the function's configured timeout (the registry's), which the jobs' deadlines read."""
    import chalice.test
    from chalice.local import Clock, LambdaContext

    from chalicelib.stages import STAGES

    timeouts = {f.name: f.timeout_seconds * 1000 for s in STAGES for f in s.functions}

    class _Context(LambdaContext):
        def __init__(
            self,
            function_name: str,
            memory_size: int,
            max_runtime_ms: int | None = None,
            time_source: Clock | None = None,
        ) -> None:
            runtime = max_runtime_ms or timeouts.get(function_name, 3000)
            super().__init__(function_name, memory_size, runtime, time_source)

    setattr(chalice.test, "LambdaContext", _Context)  # noqa: B010 - replacing the class chalice.test imported


@pytest.fixture(autouse=True, scope="session")
def _moto_answers_as_aws() -> None:
    """In-process moto (integration tier) answers as KMS does, like the local stack's server."""
    from tools.moto_fidelity import install

    install()


@pytest.fixture(autouse=True, scope="session")
def _sdk_and_moto_setup_costs_paid_once() -> None:
    """Speed only, no behaviour (a moto stack's setup went from 1.8 s to 0.7 s):

    - every botocore session loads the SDK's data files (endpoints, service models) through one
      loader, as the stages' one session per container does (chalicelib.stages.app); the tests
      make a session per principal, per moto mock and per fresh container, and each parsed them
      again (about 1 s of an integration stack's setup);
    - moto makes an RSA-2048 private key for every KMS key, symmetric and HMAC keys included,
      where only Sign, Verify and GetPublicKey (asymmetric keys) use it: those share one (0.09 s
      per key). Asymmetric keys still get their own."""
    import functools

    import botocore.loaders
    import botocore.session
    import moto.kms.models

    setattr(botocore.session, "create_loader", functools.cache(botocore.loaders.create_loader))  # noqa: B010
    generate = getattr(moto.kms.models, "generate_private_key")  # noqa: B009 - the name moto's Key calls
    unused = functools.cache(lambda: generate("SYMMETRIC_DEFAULT"))

    def private_key(key_spec: str) -> Any:
        return unused() if key_spec == "SYMMETRIC_DEFAULT" or key_spec.startswith("HMAC_") else generate(key_spec)

    setattr(moto.kms.models, "generate_private_key", private_key)  # noqa: B010
