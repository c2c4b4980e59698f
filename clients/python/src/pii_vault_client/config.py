"""``Config``: timeouts, connection pool and retries, in the style of botocore's ``Config``.

    from pii_vault_client import Client, Config

    vault = Client(..., config=Config(retries={"max_attempts": 2, "mode": "standard"}, read_timeout=5))

``retries`` takes botocore's keys with botocore's meaning: ``total_max_attempts`` counts
every attempt (1 = never retry); ``max_attempts`` counts retries after the first attempt;
``total_max_attempts`` wins when both are given. ``mode`` is ``"standard"``, the only
one: 409, 429 and 503 answers are retried after their ``Retry-After`` (never sooner) plus
up to 50 % jitter, without one after a wait doubling from ``backoff``; a wait longer
than ``max_retry_wait`` is not waited (the error is raised at once). A request that got
no answer is retried only when repeating it is safe (reads, and writes carrying an
``Idempotency-Key``). ``version_limit`` is never retried: waiting cannot fix it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MODES = ("standard",)
DEFAULT_TOTAL_ATTEMPTS = 4


@dataclass(frozen=True)
class Config:
    """Client settings (every field has a default)."""

    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    retries: Mapping[str, Any] = field(default_factory=dict)
    max_pool_connections: int = 10
    backoff: float = 0.2
    max_retry_wait: float = 20.0

    def __post_init__(self) -> None:
        unknown = set(self.retries) - {"total_max_attempts", "max_attempts", "mode"}
        if unknown:
            raise ValueError(f"unknown retries keys: {', '.join(sorted(unknown))}")
        if self.retries.get("mode", "standard") not in MODES:
            raise ValueError(f"retries mode must be one of {', '.join(MODES)}")
        if self.total_attempts < 1:
            raise ValueError("retries: total_max_attempts >= 1 and max_attempts >= 0")
        if min(self.connect_timeout, self.read_timeout) <= 0 or self.max_pool_connections < 1:
            raise ValueError("timeouts > 0 and max_pool_connections >= 1")
        if self.backoff < 0 or self.max_retry_wait < 0:
            raise ValueError("backoff >= 0 and max_retry_wait >= 0")

    @property
    def total_attempts(self) -> int:
        """Every attempt a call may make, the first included."""
        if "total_max_attempts" in self.retries:
            return int(self.retries["total_max_attempts"])
        if "max_attempts" in self.retries:
            return int(self.retries["max_attempts"]) + 1
        return DEFAULT_TOTAL_ATTEMPTS
