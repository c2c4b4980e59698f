"""Services are built once per container, even when the first requests arrive together (issue 19)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib.stages.wiring import Lazy

BURST = 32


def test_given_a_concurrent_first_burst_then_the_service_is_built_once_and_shared() -> None:
    built: list[object] = []
    everyone_waiting = threading.Barrier(BURST)

    def factory() -> object:
        built.append(service := object())
        time.sleep(0.05)  # a cold build (boto3 clients, key caches) takes a while: the others arrive meanwhile
        return service

    get = Lazy(factory)

    def first_request(_: int) -> object:
        everyone_waiting.wait()
        return get()

    with ThreadPoolExecutor(max_workers=BURST) as pool:
        services = list(pool.map(first_request, range(BURST)))

    assert len(built) == 1
    assert all(service is built[0] for service in services)


def test_given_a_build_that_fails_then_the_next_request_builds_again() -> None:
    attempts: list[int] = []

    def factory() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("cold start failed")
        return "service"

    get = Lazy(factory)

    with pytest.raises(RuntimeError):
        get()
    assert get() == "service" and get() == "service"
    assert len(attempts) == 2
