"""API Gateway's own answers under ``chalice local`` and ``chalice.test.Client``.

Both serve an app through ``chalice.local.LocalGateway``, which routes before the app
runs: a path no route matches gets a hard-coded ``403 {"message": "Missing
Authentication Token"}``, and an OPTIONS request to any known path a CORS preflight
answer. Deployed, API Gateway answers both as MISSING_AUTHENTICATION_TOKEN (our routes
have no CORS, so no OPTIONS methods), which the templates map to ``not_found()``
(``gateway_responses.py``). ``serve(app)`` makes the local gateway do the same for the
apps ``create_app`` builds: a subclass answering those two cases, put where chalice
looks the class up (``chalice.local``; ``chalice.test`` imports it by name). Anything
else (a known path with an unknown method, 405; every view) reaches the app as before.

``create_app`` calls ``serve`` only when ``chalice.local`` is already imported: the CLI
(``chalice local``, tools/localserver.py) and ``chalice.test`` import it before they load
an app, and a Lambda function never does, so nothing changes, or is imported, there.
"""

from __future__ import annotations

import json
import sys
import weakref
from typing import Any

from chalice import Chalice

from chalicelib.api.gateway_responses import not_found

_APPS: weakref.WeakSet[Chalice] = weakref.WeakSet()


def missing_route_answer() -> dict[str, Any]:
    """The Lambda-proxy-shaped answer for a request API Gateway has no route for."""
    answer = not_found()
    return {
        "statusCode": answer.status,
        "headers": answer.all_headers(),
        "multiValueHeaders": {},
        "body": json.dumps(answer.body, separators=(",", ":")),
        "isBase64Encoded": False,
    }


def serve(app: Chalice) -> None:
    """Answer unknown routes of ``app`` as the deployed API does, if chalice's local gateway is loaded."""
    if "chalice.local" not in sys.modules:
        return
    _APPS.add(app)
    _install()


def _install() -> None:
    from chalice import local

    if getattr(local.LocalGateway, "answers_missing_routes", False):
        return
    base: Any = local.LocalGateway

    class RoutingLocalGateway(base):  # type: ignore[misc]
        """``LocalGateway`` routing as API Gateway does for our apps (module docstring)."""

        answers_missing_routes = True

        def __init__(self, app_object: Chalice, config: Any) -> None:
            super().__init__(app_object, config)
            self._ours = app_object in _APPS
            self._routes = app_object.routes
            self._matcher = local.RouteMatcher(list(app_object.routes))

        def handle_request(self, method: str, path: str, headers: Any, body: bytes | None) -> Any:
            if self._ours and not self._has_route(method, path):
                return missing_route_answer()
            return super().handle_request(method, path, headers, body)

        def _has_route(self, method: str, path: str) -> bool:
            try:
                matched = self._matcher.match_route(path)
            except ValueError:
                return False
            return method != "OPTIONS" or "OPTIONS" in self._routes[matched.route]

    for module in (local, sys.modules.get("chalice.test")):
        if module is not None:
            setattr(module, "LocalGateway", RoutingLocalGateway)  # noqa: B010 - replacing chalice's class
