"""A stage container's AWS clients, each made once, on first use (``Lazy``).

Apart from ``wiring`` so that ``keys_wiring``, which ``wiring`` imports, can name them
without importing it back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")
# boto3 clients are generated at run time; botocore ships no types for their methods.
AwsClient = Any


class Lazy(Generic[T]):
    """Built once, on first use, then reused across warm invocations. Thread-safe: a burst of
    concurrent first requests (``chalice local`` serves each on its own thread) builds it once."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._built: list[T] = []

    def __call__(self) -> T:
        if not self._built:
            with self._lock:
                if not self._built:
                    self._built.append(self._factory())
        return self._built[0]


@dataclass(frozen=True)
class Clients:
    """The container's AWS clients, each made on first use."""

    kms: Callable[[], AwsClient]
    dynamodb: Callable[[], AwsClient]

    @classmethod
    def of(cls, kms: AwsClient, dynamodb: AwsClient) -> Clients:
        """Clients made already (tools, tests, the benchmark)."""
        return cls(kms=lambda: kms, dynamodb=lambda: dynamodb)
