"""Concurrent writers over DynamoDB (moto): no lost update, no gap, no duplicate version.

moto serialises calls made in one process, so races are forced deterministically:
a botocore hook lets a second writer commit right before the first one's call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.envelope.format import Opener, Sealer
from chalicelib.keys.kms import FreshDataKeys, KmsDecryptor, KmsEncryptor
from chalicelib.keys.refs import KeyTableResolver, PublishedDataKeys
from chalicelib.service import ReaderService, WriterService
from chalicelib.store import DynamoDbStore
from chalicelib.store.dynamodb import DynamoDbTable
from chalicelib.store.key_table import DynamoDbKeyTable
from tests.fakes import FakeKms, InMemoryStore
from tests.integration.conftest import Stack, stage_client
from tests.integration.test_api import PERSON


def writer_service(stack: Stack) -> tuple[WriterService, Any]:
    """A second writer 'Lambda' with its own clients (and its own in-memory hints)."""
    ddb = stage_client("writer", "dynamodb")
    kms = stage_client("writer", "kms")
    keys = DynamoDbKeyTable(DynamoDbTable(ddb, stack.resources["keys_table_name"]))
    sealer = Sealer(PublishedDataKeys(FreshDataKeys(KmsEncryptor(kms, "alias/pii-vault")), keys), "pii-vault")
    service = WriterService(DynamoDbStore(DynamoDbTable(ddb, stack.resources["table_name"])), sealer)
    return service, ddb


def reader_service(stack: Stack) -> ReaderService:
    kms = stage_client("reader", "kms")
    ddb = stage_client("reader", "dynamodb")
    repo = DynamoDbStore(DynamoDbTable(ddb, stack.resources["table_name"]))
    keys = DynamoDbKeyTable(DynamoDbTable(ddb, stack.resources["keys_table_name"]))
    decryptor = KmsDecryptor(kms, "alias/pii-vault")
    return ReaderService(repo, Opener(decryptor, "pii-vault", resolver=KeyTableResolver(keys, decryptor)))


def before_next(client: Any, operation: str, action: Callable[[], object]) -> None:
    """Run ``action`` once (its result ignored), just before ``client``'s next ``operation`` call goes out."""
    done: list[bool] = []

    def hook(**_: Any) -> None:
        if not done:
            done.append(True)
            action()

    client.meta.events.register(f"before-call.dynamodb.{operation}", hook)


def test_given_two_writers_alternating_then_secret_versions_are_gapless_and_unique(stack: Stack) -> None:
    (first, _), (second, _) = writer_service(stack), writer_service(stack)
    versions = [
        (first if n % 2 else second).put_secret("acme", "rotating", {"value": f"value-{n}"}).version
        for n in range(1, 11)
    ]
    assert versions == list(range(1, 11))
    reader = reader_service(stack)
    assert [v.version for v in reader.secret_versions("acme", "rotating")] == list(range(1, 11))
    for n in range(1, 11):
        assert reader.get_secret("acme", "rotating", n).value == f"value-{n}"


def test_given_a_competing_writer_commits_first_then_the_loser_takes_the_next_version(stack: Stack) -> None:
    (first, first_ddb), (second, _) = writer_service(stack), writer_service(stack)
    first.put_secret("acme", "race", {"value": "value-1"})
    before_next(first_ddb, "TransactWriteItems", lambda: second.put_secret("acme", "race", {"value": "value-2"}))
    assert first.put_secret("acme", "race", {"value": "value-3"}).version == 3
    reader = reader_service(stack)
    assert [reader.get_secret("acme", "race", n).value for n in (1, 2, 3)] == ["value-1", "value-2", "value-3"]


def test_given_concurrent_patches_of_different_fields_without_if_match_then_both_survive(stack: Stack) -> None:
    (first, first_ddb), (second, _) = writer_service(stack), writer_service(stack)
    created = first.create_person("acme", PERSON)
    before_next(
        first_ddb, "UpdateItem", lambda: second.patch_person("acme", created.id, {"name": "Second Writer"}, None)
    )
    assert first.patch_person("acme", created.id, {"email": "first.writer@example.org"}, None).version == 3
    data = reader_service(stack).get_person("acme", created.id).data
    assert (data["name"], data["email"]) == ("Second Writer", "first.writer@example.org")
    assert data["surname"] == PERSON["surname"]


def test_given_concurrent_patches_with_the_same_if_match_then_exactly_one_wins(stack: Stack) -> None:
    from chalicelib.support.errors import PreconditionFailedError

    (first, first_ddb), (second, _) = writer_service(stack), writer_service(stack)
    created = first.create_person("acme", PERSON)
    before_next(first_ddb, "UpdateItem", lambda: second.patch_person("acme", created.id, {"name": "Winner"}, 1))
    with pytest.raises(PreconditionFailedError):
        first.patch_person("acme", created.id, {"name": "Loser"}, 1)
    assert reader_service(stack).get_person("acme", created.id, ("name",)).data == {"name": "Winner"}


def test_given_many_threads_putting_one_secret_then_versions_are_exactly_one_to_n() -> None:
    """Service-level retry logic under real thread interleaving, over the atomic fake."""
    kms, repo = FakeKms(), InMemoryStore()
    writer = WriterService(repo, Sealer(kms.data_keys(), "pii-vault"))
    results: list[int] = []
    lock = threading.Lock()

    def put(worker: int) -> None:
        for n in range(25):
            version = writer.put_secret("acme", "busy", {"value": f"{worker}-{n}"}).version
            with lock:
                results.append(version)

    threads = [threading.Thread(target=put, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == list(range(1, 201))
    assert sorted(v for (_, _, v) in repo.secrets) == list(range(1, 201))


def test_given_a_writer_with_a_stale_guess_after_another_deleted_the_secret_then_numbering_restarts_at_one(
    stack: Stack,
) -> None:
    (first, _), (second, _) = writer_service(stack), writer_service(stack)
    for n in range(3):
        first.put_secret("acme", "reborn", {"value": f"old-{n}"})
    second.delete_secret("acme", "reborn")
    assert first.put_secret("acme", "reborn", {"value": "new-1"}).version == 1
    assert [v.version for v in reader_service(stack).secret_versions("acme", "reborn")] == [1]
