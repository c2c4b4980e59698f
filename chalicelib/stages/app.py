"""The composition root: the Chalice app of one stage, wired from the stage registry.

AWS clients are created lazily, on the first request, so importing ``app.py`` (as
``chalice package`` does) needs no region or credentials and a cold start pays for
botocore only when it serves traffic. Tests inject clients, a clock, or settings.
"""

from __future__ import annotations

import datetime as _dt
import functools
import importlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from chalice import Chalice

from chalicelib.api import local_gateway
from chalicelib.api.callers import AllowList, caller_gate
from chalicelib.api.http import audit_refusals, finish_response
from chalicelib.stages.registry import Trigger, settings_for, stage
from chalicelib.stages.wiring import AwsClient, Clients, Lazy, Wiring
from chalicelib.support.audit import AuditLog
from chalicelib.support.config import APP_NAME, Settings
from chalicelib.support.errors import ConfigurationError

# Explicit timeouts, and botocore's standard retries (jittered backoff, retry quotas):
# one call's worst case, 3 x (1 + 3) s, stays under the 15 s Lambda timeout, so the
# function answers 503 itself instead of being killed mid-request.
_CONNECT_TIMEOUT_S = 1
_READ_TIMEOUT_S = 3
_MAX_ATTEMPTS = 3


_SESSION_LOCK = threading.Lock()


@functools.cache
def _session() -> Any:
    """The container's one botocore session: its clients share the endpoint data and service
    models it loads (a session per client loaded them again: about 70 ms of CPU per cold start),
    and boto3, which adds nothing a client needs, is never imported (about 30 ms more)."""
    import botocore.session

    return botocore.session.get_session()


def _client(service_name: str, settings: Settings) -> AwsClient:
    from botocore.config import Config

    config = Config(
        connect_timeout=_CONNECT_TIMEOUT_S,
        read_timeout=_READ_TIMEOUT_S,
        retries={"mode": "standard", "total_max_attempts": _MAX_ATTEMPTS},
    )
    with _SESSION_LOCK:  # a botocore session is not safe to share between threads making clients
        return _session().create_client(service_name, region_name=settings.region, config=config)


def create_app(
    role: str | None = None,
    *,
    settings: Settings | None = None,
    kms_client: Any = None,
    dynamodb_client: Any = None,
    clock: Callable[[], _dt.datetime] | None = None,
    masked_view: bool = True,
) -> Chalice:
    """The Chalice app of one stage: ``role``, else ``settings.role``, else ``PII_VAULT_ROLE``.

    Without ``settings`` the stage's declared variables are read from the environment.
    ``masked_view=False`` (the benchmark's comparison only) builds a writer that seals no
    masked projections (and so removes those of the records it writes)."""
    if settings is None:
        settings = settings_for(role=role)
    elif role is not None and role != settings.role:
        raise ConfigurationError("role and settings.role disagree")
    spec = stage(settings.role)

    app = Chalice(app_name=APP_NAME)
    app.log.setLevel(logging.INFO)
    logging.getLogger("chalicelib").setLevel(logging.INFO)
    if spec.kind == "api":
        local_gateway.serve(app)  # chalice local / chalice.test: unknown routes answer as deployed
        app.register_middleware(finish_response, "http")
        # Outer to inner: the caller check answers before any view (so before any AWS call).
        audit = AuditLog()
        app.register_middleware(caller_gate(AllowList(settings.allowed_callers), audit, settings.local_caller), "http")
        app.register_middleware(audit_refusals(audit), "http")

    # One client per service and container, made on first use and shared by every part.
    clients = Clients(
        kms=Lazy(lambda: kms_client or _client("kms", settings)),
        dynamodb=Lazy(lambda: dynamodb_client or _client("dynamodb", settings)),
    )
    module, _, function = spec.register.partition(":")
    register: Callable[[Chalice, Wiring], None] = getattr(importlib.import_module(module), function)
    register(app, Wiring(settings, clients, clock=clock, masked_view=masked_view))
    return app


def lambda_handlers(app: Chalice, role: str | None = None) -> dict[str, Callable[..., Any]]:
    """The functions of stage ``role`` (default: ``PII_VAULT_ROLE``) other than its API handler,
    by name: Lambda resolves the handler ``app.<name>`` that ``chalice package`` gives each of them
    as an attribute of ``app.py``. A declared function the app does not register is a startup error."""
    from chalicelib.support.config import process_environment, role_from_env

    spec = stage(role_from_env(process_environment()) if role is None else role)
    handlers: dict[str, Callable[..., Any]] = {}
    for function in spec.functions:
        if function.trigger is Trigger.HTTP:
            continue
        handler = app.handler_map.get(function.name)
        if handler is None:
            raise ConfigurationError(f"the {spec.name} stage registers no function {function.name!r}")
        handlers[function.name] = handler
    return handlers
