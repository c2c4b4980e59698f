"""One contract, two stores: DynamoDB (over moto) and the in-memory fake must agree."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.store import DynamoDbMaskedPeople, DynamoDbStore, layout
from chalicelib.store.dynamodb import DynamoDbTable
from chalicelib.store.records import (
    ADOPT_V1,
    CREATE_SLOT,
    CREATED_LEGACY,
    CREATED_SEALED,
    FIELD_CODES,
    META_CREATED,
    META_LEGACY,
    META_UPDATED,
    Page,
    PersonRecord,
    PersonShape,
    PersonVersionConflict,
    PersonWrite,
    SecretHead,
    SecretVersion,
    SecretVersionConflict,
    shape_of,
)
from chalicelib.support.errors import IntegrityError, NotFoundError, PreconditionFailedError, ValidationError
from infra.local import bootstrap
from tests.fakes import InMemoryStore
from tests.request_proof import operator_code


@pytest.fixture(params=["memory", "dynamodb"])
def repo(request: pytest.FixtureRequest, aws_env: None) -> Iterator[Any]:
    if request.param == "memory":
        yield InMemoryStore()
        return
    with mock_aws():
        kms, ddb = boto3.client("kms"), boto3.client("dynamodb")
        bootstrap(kms, ddb)
        # The adapter's contract, not a stage: every stage's operations on one operator client
        # (each stage's own calls are judged where its app runs them).
        with operator_code("the store adapter's contract, run with every stage's operations on one client"):
            yield DynamoDbStore(DynamoDbTable(ddb, "pii-vault"))


def blob(tag: str, version: int = 3) -> bytes:
    """A stored blob as the store sees it: a header of ``version`` (v3: 0x03 | kind | slot), opaque bytes."""
    header = bytes([3, 2, ord("0")]) if version == 3 else bytes([1, 1, ord("0")])
    return header + tag.encode().ljust(28, b".")


def ref(tag: str) -> bytes:
    return tag.encode().ljust(16, b".")


def person(person_id: str = "a" * 32, customer: str = "acme", **changes: Any) -> PersonRecord:
    base = dict(
        customer_id=customer,
        person_id=person_id,
        version=1,
        created_at="2026-01-01T00:00:00.000Z",
        updated_at="2026-01-01T00:00:00.000Z",
        fields={"name": blob("name"), "email": blob("email"), META_CREATED: blob("c"), META_UPDATED: blob("u")},
        refs={CREATE_SLOT: ref("c")},
    )
    return PersonRecord(**{**base, **changes})


def secret(secret_id: str, version: int, value: bytes = b"v", created_at: str = "t") -> SecretVersion:
    return SecretVersion("acme", secret_id, version, created_at, "k", {"0": b"w"}, value)


def write(person_id: str = "a" * 32, *, partial: bool = False, expected: int = 1, **changes: Any) -> PersonWrite:
    base: dict[str, Any] = dict(
        customer_id="acme",
        person_id=person_id,
        updated_at="t",
        refs={"0": ref("w")},
        fields={"name": blob("x"), META_UPDATED: blob("u2")},
        drop_refs=() if partial else tuple(FIELD_CODES.values()),
        shape=PersonShape(expected),
    )
    return PersonWrite(**{**base, **changes}, partial=partial)


def patch(fields: dict[str, bytes], refs: dict[str, bytes], updated_at: str = "t", expected: int = 1) -> PersonWrite:
    return write(fields=fields, refs=refs, updated_at=updated_at, partial=True, expected=expected)


def add_version(repo: Any, build: Callable[[int], SecretVersion], latest: int = 0) -> SecretVersion:
    """The next version through the store's one attempt: guess ``latest``, then build on the conflict's head."""
    head = SecretHead(latest, "inc" if latest else None)
    for _attempt in range(3):
        secret_version = build(head.latest + 1)
        try:
            repo.put_secret_version(secret_version, head, SecretHead(head.latest + 1, head.incarnation or "inc"))
            return secret_version
        except SecretVersionConflict as conflict:
            head = conflict.head
    raise AssertionError("the store kept refusing the head it handed back")


def test_given_a_created_person_when_fetched_then_identical(repo: Any) -> None:
    repo.create_person(person())
    assert repo.get_person("acme", "a" * 32) == person()
    assert repo.get_person("globex", "a" * 32) is None


def test_given_a_replace_then_version_increments_and_patch_slots_are_dropped(repo: Any) -> None:
    repo.create_person(person())
    repo.update_person(patch({"email": blob("e2")}, {"e": ref("w-e")}, "t2"))
    replaced = write(
        refs={"0": ref("w2")}, fields={"name": blob("n3"), "email": blob("e3")}, updated_at="t3", expected=2
    )
    version = repo.update_person(replaced)
    stored = repo.get_person("acme", "a" * 32)
    assert version == 3 and stored.version == 3
    assert stored.refs == {"0": ref("w2"), CREATE_SLOT: ref("c")}  # the creation metadata keeps its slot
    assert stored.fields == {
        "name": blob("n3"),
        "email": blob("e3"),
        META_CREATED: blob("c"),
        META_UPDATED: blob("u"),
    }
    assert (stored.updated_at, stored.created_at) == ("t3", "2026-01-01T00:00:00.000Z")


def test_given_a_patch_then_only_named_fields_and_slots_change(repo: Any) -> None:
    repo.create_person(person())
    version = repo.update_person(patch({"email": blob("e2")}, {"e": ref("w-e")}, "t2"))
    stored = repo.get_person("acme", "a" * 32)
    assert version == 2
    assert stored.fields == {**person().fields, "email": blob("e2")}
    assert stored.refs == {CREATE_SLOT: ref("c"), "e": ref("w-e")}


@pytest.mark.parametrize("operation", ["replace", "patch"])
def test_given_another_version_then_a_conflict_carries_the_stored_one_and_nothing_changes(
    repo: Any, operation: str
) -> None:
    repo.create_person(person(version=4))
    with pytest.raises(PersonVersionConflict) as raised:
        repo.update_person(write(partial=operation == "patch", expected=7))
    assert raised.value.shape == PersonShape(4, CREATED_SEALED)
    assert repo.get_person("acme", "a" * 32) == person(version=4)


def test_given_creation_metadata_other_than_assumed_then_a_conflict_says_so(repo: Any) -> None:
    legacy = person(refs={}, slots={"0": b"wrapped-0"}, fields={"name": blob("name", version=1)})
    if isinstance(repo, InMemoryStore):
        repo.create_person(legacy)
    else:  # as the v1 writer stored it: the names of that generation
        item = {
            **layout.person_key("acme", "a" * 32),
            layout.VERSION: {"N": "1"},
            layout.CREATED_AT: {"S": legacy.created_at},
            layout.UPDATED_AT: {"S": legacy.updated_at},
            layout.SLOTS: layout.slots_attribute(legacy.slots),
            **layout.field_attributes(legacy.fields),
        }
        repo._table.call("put_item", Item=item)
    with pytest.raises(PersonVersionConflict) as raised:
        repo.update_person(write(expected=1))
    assert raised.value.shape == PersonShape(1, ADOPT_V1, legacy_names=not isinstance(repo, InMemoryStore))
    shape = raised.value.shape
    fields = {"name": blob("x"), META_LEGACY: blob("l"), META_UPDATED: blob("u2")}
    marked = write(expected=1, shape=shape, fields=fields)
    assert repo.update_person(marked) == 2
    assert shape_of(repo.get_person("acme", "a" * 32)) == PersonShape(2, CREATED_LEGACY)


def test_given_stripped_creation_metadata_then_a_write_cannot_build_on_it(repo: Any) -> None:
    """Issue 21 E: update metadata without creation metadata is never taken for a legacy record."""
    fields = {"name": blob("name"), META_UPDATED: blob("u")}
    repo.create_person(person(fields=fields))
    with pytest.raises(IntegrityError):
        repo.update_person(write(expected=9))
    assert repo.get_person("acme", "a" * 32) == person(fields=fields)


def test_given_a_wrong_expected_version_when_deleting_then_precondition_failed_and_no_change(repo: Any) -> None:
    repo.create_person(person())
    with pytest.raises(PreconditionFailedError):
        repo.delete_person("acme", "a" * 32, 7)
    assert repo.get_person("acme", "a" * 32) == person()


@pytest.mark.parametrize("operation", ["replace", "patch"])
def test_given_a_missing_person_when_updated_then_a_conflict_without_version_and_nothing_created(
    repo: Any, operation: str
) -> None:
    with pytest.raises(PersonVersionConflict) as raised:
        repo.update_person(write(partial=operation == "patch"))
    assert raised.value.shape is None
    assert repo.get_person("acme", "a" * 32) is None


def test_given_a_missing_person_when_deleted_then_not_found(repo: Any) -> None:
    with pytest.raises(NotFoundError):
        repo.delete_person("acme", "a" * 32, None)


def test_given_people_in_two_tenants_when_listed_in_pages_then_only_the_tenants_in_id_order(repo: Any) -> None:
    ids = [f"{n:032x}" for n in range(1, 6)]
    for person_id in reversed(ids):
        repo.create_person(person(person_id))
    repo.create_person(person("f" * 32, customer="globex"))
    seen, token = [], None
    while True:
        page = repo.list_people("acme", 2, token)
        seen += [p.person_id for p in page.items]
        token = page.next_token
        if token is None or not page.items:
            break
    assert seen == ids


def _masked(repo: Any) -> Any:
    """The masked stage's reads over the same people: the fake itself, or the DynamoDB masked store."""
    return repo if isinstance(repo, InMemoryStore) else DynamoDbMaskedPeople(repo._table)


@pytest.mark.parametrize("count", [2, 4, 5, 6])
@pytest.mark.parametrize("view", ["full", "masked"])
def test_given_a_tenant_when_paged_then_no_page_is_empty_and_the_last_carries_no_next(
    repo: Any, count: int, view: str
) -> None:
    """Issue 24: a tenant of exactly k x limit people ended on an empty page ([2, 2, 0]).

    The tenant also has a secret, whose items sort after its people (``S#`` > ``P#``): moto
    then answers a query that stops at its Limit with a ``LastEvaluatedKey`` as DynamoDB
    does (DynamoDB does so even when nothing follows)."""
    for n in range(1, count + 1):
        repo.create_person(person(f"{n:032x}"))
    add_version(repo, lambda version: secret("hook", version))
    repo.create_person(person("f" * 32, customer="globex"))
    lister = repo.list_people if view == "full" else _masked(repo).list_masked_people
    sizes, token = [], None
    for _ in range(count + 2):
        page = lister("acme", 2, token)
        sizes.append(len(page.items))
        token = page.next_token
        if token is None:
            break
    assert sizes == [2] * (count // 2) + ([count % 2] if count % 2 else [])


def test_given_a_tenant_of_one_page_exactly_then_one_page_without_next(repo: Any) -> None:
    for n in range(1, 4):
        repo.create_person(person(f"{n:032x}"))
    page = repo.list_people("acme", 3, None)
    assert [p.person_id for p in page.items] == [f"{n:032x}" for n in range(1, 4)] and page.next_token is None
    assert repo.list_people("globex", 3, None) == Page([], None)


def test_given_a_forged_page_token_then_validation_error(repo: Any) -> None:
    with pytest.raises(ValidationError):
        repo.list_people("acme", 2, "eyJhZnRlciI6ICIuLi8uLi8ifQ")


def test_given_secret_versions_then_allocation_is_sequential_and_latest_wins(repo: Any) -> None:
    for expected in (1, 2, 3):
        stored = add_version(repo, lambda v: secret("s", v, b"v%d" % v, f"t{v}"))
        assert stored.version == expected
    assert repo.get_secret("acme", "s", None).version.value == b"v3"
    assert repo.get_secret("acme", "s", 1).version.value == b"v1"
    assert repo.get_secret("acme", "s", None).head == SecretHead(3, "inc")
    assert repo.get_secret("acme", "s", 9) is None
    assert repo.get_secret("acme", "other", None) is None
    assert [(v.version, v.created_at) for v in repo.list_secret_versions("acme", "s")] == [
        (1, "t1"),
        (2, "t2"),
        (3, "t3"),
    ]


def test_given_a_secret_prefix_of_another_then_versions_do_not_mix(repo: Any) -> None:
    for secret_id in ("key", "key.2"):
        add_version(repo, partial(secret, secret_id, value=secret_id.encode()))
    assert repo.get_secret("acme", "key", None).version.value == b"key"
    assert len(repo.list_secret_versions("acme", "key")) == 1


@pytest.mark.parametrize("count", [3, 150], ids=["one-transaction", "batches"])
def test_given_a_deleted_secret_then_no_version_is_left_and_a_second_delete_is_not_found(repo: Any, count: int) -> None:
    for n in range(count):
        add_version(repo, lambda v: secret("s", v), latest=n)
    rounds: list[int] = []
    while not rounds or rounds[-1] > 0:
        progress = repo.delete_secret("acme", "s", 100)
        rounds.append(progress.remaining)
        # gone for readers from the first round on, and no version can be added meanwhile
        assert repo.list_secret_versions("acme", "s") == [] and repo.get_secret("acme", "s", None) is None
        if progress.remaining:
            with pytest.raises(SecretVersionConflict) as raised:
                repo.put_secret_version(secret("s", count + 1), SecretHead(count, "inc"), SecretHead(count + 1, "inc"))
            assert raised.value.head.deleting
    assert len(rounds) == -(-count // 100)
    with pytest.raises(NotFoundError):
        repo.delete_secret("acme", "s", 100)
    assert add_version(repo, lambda v: secret("s", v)).version == 1


def test_given_a_head_naming_a_missing_latest_version_then_integrity_error(repo: Any) -> None:
    add_version(repo, lambda v: secret("s", v))
    head = SecretHead(1, "inc")
    repo.put_secret_version(secret("s", 2), head, SecretHead(2, "inc"))
    if isinstance(repo, InMemoryStore):
        del repo.secrets[("acme", "s", 2)]
    else:
        repo._table.call("delete_item", Key=layout.item_key("acme", layout.secret_version_key("s", 2)))
    with pytest.raises(IntegrityError):
        repo.get_secret("acme", "s", None)


def test_given_some_existing_ids_when_multi_got_then_the_existing_ones_in_the_order_asked(repo: Any) -> None:
    ids = [f"{n:032x}" for n in range(1, 6)]
    for person_id in ids:
        repo.create_person(person(person_id))
    repo.create_person(person("f" * 32, customer="globex"))
    asked = [ids[3], "e" * 32, ids[0], ids[3], "f" * 32, ids[4]]
    got = repo.get_people("acme", asked)
    assert [p.person_id for p in got] == [ids[3], ids[0], ids[4]]
    assert got[1] == person(ids[0])
    assert repo.get_people("acme", []) == []


def test_given_more_than_one_batch_of_ids_when_multi_got_then_all_are_returned(repo: Any) -> None:
    ids = [f"{n:032x}" for n in range(1, 131)]
    for person_id in ids:
        repo.create_person(person(person_id))
    assert [p.person_id for p in repo.get_people("acme", list(reversed(ids)))] == list(reversed(ids))


def test_given_a_secret_at_its_version_limit_then_the_next_put_is_refused_and_nothing_written(
    repo: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.store import records
    from chalicelib.support.errors import VersionLimitError

    monkeypatch.setattr(records, "MAX_SECRET_VERSIONS", 3)
    for _ in range(3):
        add_version(repo, lambda v: secret("s", v))
    with pytest.raises(VersionLimitError):
        add_version(repo, lambda v: secret("s", v))
    assert [v.version for v in repo.list_secret_versions("acme", "s")] == [1, 2, 3]
    assert repo.delete_secret("acme", "s", 100).done
    assert add_version(repo, lambda v: secret("s", v)).version == 1


def test_given_a_stale_expected_latest_then_a_conflict_carries_the_latest_and_nothing_is_written(repo: Any) -> None:
    for _ in range(2):
        add_version(repo, lambda v: secret("s", v))
    for stale in (SecretHead(0), SecretHead(1, "inc"), SecretHead(5, "inc"), SecretHead(2, "other"), SecretHead(2)):
        with pytest.raises(SecretVersionConflict) as raised:
            repo.put_secret_version(secret("s", stale.latest + 1, b"late"), stale, SecretHead(stale.latest + 1, "x"))
        assert raised.value.head == SecretHead(2, "inc")
    assert [v.version for v in repo.list_secret_versions("acme", "s")] == [1, 2]
    assert repo.get_secret("acme", "s", None).version.value == b"v"
    assert repo.delete_secret("acme", "s", 100).done
    with pytest.raises(SecretVersionConflict) as raised:
        repo.put_secret_version(secret("s", 3), SecretHead(2, "inc"), SecretHead(3, "inc"))
    assert raised.value.head == SecretHead()  # deleted meanwhile: numbering restarts
