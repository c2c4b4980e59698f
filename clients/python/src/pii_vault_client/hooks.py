"""Event hooks, in the manner of botocore's ``client.meta.events.register``.

    vault.events.register("before-send", lambda event: ...)    # each attempt, before it goes
    vault.events.register("after-receive", lambda event: ...)  # each answer, or failure to get one
    log_requests(vault)                                        # both, as DEBUG log lines

A hook sees a ``RequestEvent``: the operation (``get_person``, or ``send`` for a raw call),
method, path without the query, attempt number and, after receiving, the status, error
code, request id and elapsed seconds. It never sees a header value, a query string or a
body: nothing a hook logs can hold a person's data, a secret or a signature. A hook that
raises stops the call with its exception.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

EVENTS = ("before-send", "after-receive")
Hook = Callable[["RequestEvent"], None]


@dataclass(frozen=True)
class RequestEvent:
    name: str  # "before-send" or "after-receive"
    operation: str
    method: str
    path: str
    attempt: int
    status: int | None = None  # after-receive: None when no answer came (see ``error``)
    error: str | None = None  # the answer's error code, or the failure's type name
    request_id: str | None = None
    elapsed: float | None = None  # seconds, after-receive


class Events:
    """Hooks by event name, run in the order registered."""

    def __init__(self) -> None:
        self._hooks: dict[str, list[Hook]] = {name: [] for name in EVENTS}

    def register(self, name: str, hook: Hook) -> None:
        if name not in self._hooks:
            raise ValueError(f"unknown event {name!r}; one of {', '.join(EVENTS)}")
        self._hooks[name].append(hook)

    def unregister(self, name: str, hook: Hook) -> None:
        self._hooks[name].remove(hook)

    def emit(self, event: RequestEvent) -> None:
        for hook in self._hooks[event.name]:
            hook(event)


def log_requests(client: Any, logger: logging.Logger | None = None, level: int = logging.DEBUG) -> None:
    """Log one line per attempt sent and per answer received (no values, no bodies)."""
    log = logger or logging.getLogger("pii_vault_client")

    def sent(event: RequestEvent) -> None:
        log.log(level, "%s %s %s attempt %d", event.operation, event.method, event.path, event.attempt)

    def received(event: RequestEvent) -> None:
        outcome = event.status if event.status is not None else "no answer"
        log.log(
            level,
            "%s %s %s attempt %d -> %s%s in %.0f ms (request id %s)",
            event.operation,
            event.method,
            event.path,
            event.attempt,
            outcome,
            f" {event.error}" if event.error else "",
            (event.elapsed or 0.0) * 1000,
            event.request_id or "-",
        )

    client.events.register("before-send", sent)
    client.events.register("after-receive", received)
