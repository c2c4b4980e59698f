"""Persistence of sealed records in one DynamoDB table.

Knows nothing about keys or plaintext: it stores and returns opaque ciphertext
blobs and plaintext metadata (ids, versions, timestamps, key slots).

The writer never reads an item (its role has no GetItem/Query): every write is a
single conditional Put/Update/Delete, and new version numbers come back from the
update itself (``ReturnValues=UPDATED_NEW``).

Item layout (single table, ``pk``/``sk`` strings)::

    person          pk=C#<customer>  sk=P#<person_id>
                    version N, created_at, updated_at, kms_key, slots {slot: B}, f_<field> B
    secret head     pk=C#<customer>  sk=S#<secret_id>        latest N (version counter)
    secret version  pk=C#<customer>  sk=S#<secret_id>#V#<0000000001>
                    version N, created_at, kms_key, slots {"0": B}, f_value B
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Protocol, Sequence

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.aws_errors import error_code, translate
from chalicelib.errors import (
    ConflictError,
    IntegrityError,
    VersionLimitError,
    NotFoundError,
    PreconditionFailedError,
    StorageError,
    ThrottledError,
    ValidationError,
)

FIELD_PREFIX = "f_"
_VERSION_DIGITS = 10
_BATCH_WRITE_MAX = 25
_TRANSACT_MAX = 100  # items per TransactWriteItems
_SECRET_WRITE_ATTEMPTS = 16
# Bounds the DELETE of a secret (one BatchWriteItem per 25 versions) well inside the
# Lambda timeout, so erasure always completes in one request.
MAX_SECRET_VERSIONS = 5_000
_BACKOFF_BASE_S = 0.005
_LATEST_SEEN_MAX = 4096
_THROTTLED_REASONS = {"ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"}
BATCH_GET_MAX = 100
_BATCH_GET_ROUNDS = 8
_PERSON_SK = re.compile(r"P#[0-9a-f]{32}")


@dataclass
class PersonRecord:
    """A sealed person as stored: ciphertext fields plus plaintext metadata."""

    customer_id: str
    person_id: str
    version: int
    created_at: str
    updated_at: str
    kms_key: str
    slots: dict[str, bytes]
    fields: dict[str, bytes]


@dataclass
class SecretVersion:
    customer_id: str
    secret_id: str
    version: int
    created_at: str
    kms_key: str = ""
    slots: dict[str, bytes] = field(default_factory=dict)
    value: bytes = b""


@dataclass
class Page:
    items: list[PersonRecord]
    next_token: str | None


class Repository(Protocol):
    """What the service needs from storage; DynamoDB and in-memory share a contract suite."""

    def create_person(self, record: PersonRecord) -> None: ...

    def replace_person(
        self, record: PersonRecord, expected_version: int | None
    ) -> int: ...

    def patch_person(
        self,
        customer_id: str,
        person_id: str,
        fields: Mapping[str, bytes],
        slots: Mapping[str, bytes],
        kms_key: str,
        updated_at: str,
        expected_version: int | None,
    ) -> int: ...

    def delete_person(self, customer_id: str, person_id: str, expected_version: int | None) -> None: ...

    def get_person(self, customer_id: str, person_id: str) -> PersonRecord | None: ...

    def list_people(self, customer_id: str, limit: int, token: str | None) -> Page: ...

    def get_people(self, customer_id: str, person_ids: Sequence[str]) -> list[PersonRecord]: ...

    def add_secret_version(
        self, customer_id: str, secret_id: str, now: str, build: Callable[[int], SecretVersion]
    ) -> SecretVersion: ...

    def delete_secret(self, customer_id: str, secret_id: str) -> None: ...

    def get_secret(self, customer_id: str, secret_id: str, version: int | None) -> SecretVersion | None: ...

    def list_secret_versions(self, customer_id: str, secret_id: str) -> list[SecretVersion]: ...


def partition_key(customer_id: str) -> str:
    return f"C#{customer_id}"


def person_sort_key(person_id: str) -> str:
    return f"P#{person_id}"


def secret_head_key(secret_id: str) -> str:
    return f"S#{secret_id}"


def secret_version_prefix(secret_id: str) -> str:
    return f"S#{secret_id}#V#"


def secret_version_key(secret_id: str, version: int) -> str:
    return f"{secret_version_prefix(secret_id)}{version:0{_VERSION_DIGITS}d}"


def encode_page_token(person_id: str) -> str:
    """Opaque cursor: only the last person id, never the tenant (that comes from the path)."""
    raw = json.dumps({"after": person_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str) -> str:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        person_id = data["after"]
        if not isinstance(person_id, str) or not _PERSON_SK.fullmatch(person_sort_key(person_id)):
            raise ValueError
    except (ValueError, KeyError, TypeError, UnicodeError, binascii.Error):
        raise ValidationError("next is not a valid page token", field="next") from None
    return person_id


class _Cancelled(Exception):
    """A TransactWriteItems was cancelled; ``reasons`` line up with its items."""

    def __init__(self, reasons: list[dict[str, Any]]) -> None:
        super().__init__("transaction cancelled")
        self.reasons = reasons


def condition_failed(expected_version: int | None, what: str) -> Exception:
    """A failed condition means 'gone' without If-Match, 'changed' with it (RFC 9110)."""
    if expected_version is None:
        return NotFoundError(f"{what} not found")
    return PreconditionFailedError(f"{what} does not exist at the version given in If-Match")


class DynamoDbRepository:
    """Repository over a low-level boto3 DynamoDB client (injected)."""

    def __init__(
        self,
        dynamodb_client: Any,
        table_name: str,
        *,
        consistent_reads: bool = True,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._ddb = dynamodb_client
        self._sleep = sleep  # backoff: BatchGetItem's unprocessed keys, lost secret-version races
        self._table = table_name
        self._consistent = consistent_reads
        # Last secret version number this process wrote, per secret: a first guess only.
        self._latest_seen: dict[tuple[str, str], int] = {}

    # -- plumbing -------------------------------------------------------------

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        """One DynamoDB call; a failed condition stays a ClientError for the caller to judge."""
        try:
            return getattr(self._ddb, operation)(TableName=self._table, **kwargs)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise
            raise translate(exc, "dynamodb", operation, StorageError) from exc
        except BotoCoreError as exc:
            raise translate(exc, "dynamodb", operation, StorageError) from exc

    def _key(self, customer_id: str, sort_key: str) -> dict[str, Any]:
        return {"pk": {"S": partition_key(customer_id)}, "sk": {"S": sort_key}}

    # -- people ---------------------------------------------------------------

    def create_person(self, record: PersonRecord) -> None:
        item = {
            **self._key(record.customer_id, person_sort_key(record.person_id)),
            "type": {"S": "person"},
            "id": {"S": record.person_id},
            "version": {"N": str(record.version)},
            "created_at": {"S": record.created_at},
            "updated_at": {"S": record.updated_at},
            "kms_key": {"S": record.kms_key},
            "slots": _slots_attribute(record.slots),
            **_field_attributes(record.fields),
        }
        try:
            self._call("put_item", Item=item, ConditionExpression="attribute_not_exists(pk)")
        except ClientError as exc:
            # Ids are 128-bit random: a collision means a bug, not bad luck.
            raise StorageError("a record with this id already exists") from exc

    def _update_person(
        self,
        record_key: dict[str, Any],
        sets: dict[str, dict[str, Any]],
        expected_version: int | None,
        what: str,
    ) -> int:
        names = {"#version": "version"}
        values: dict[str, Any] = {":one": {"N": "1"}}
        clauses = []
        for index, (path, value) in enumerate(sets.items()):
            placeholders = []
            for depth, segment in enumerate(path.split(".")):
                names[f"#a{index}_{depth}"] = segment
                placeholders.append(f"#a{index}_{depth}")
            values[f":v{index}"] = value
            clauses.append(f"{'.'.join(placeholders)} = :v{index}")
        condition = "attribute_exists(pk)"
        if expected_version is not None:
            condition += " AND #version = :expected"
            values[":expected"] = {"N": str(expected_version)}
        try:
            response = self._call(
                "update_item",
                Key=record_key,
                UpdateExpression=f"SET {', '.join(clauses)} ADD #version :one",
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="UPDATED_NEW",
            )
        except ClientError as exc:
            raise condition_failed(expected_version, what) from exc
        return int(response["Attributes"]["version"]["N"])

    def replace_person(self, record: PersonRecord, expected_version: int | None) -> int:
        sets = {
            "updated_at": {"S": record.updated_at},
            "kms_key": {"S": record.kms_key},
            "slots": _slots_attribute(record.slots),
            **_field_attributes(record.fields),
        }
        key = self._key(record.customer_id, person_sort_key(record.person_id))
        return self._update_person(key, sets, expected_version, "person")

    def patch_person(
        self,
        customer_id: str,
        person_id: str,
        fields: Mapping[str, bytes],
        slots: Mapping[str, bytes],
        kms_key: str,
        updated_at: str,
        expected_version: int | None,
    ) -> int:
        sets: dict[str, dict[str, Any]] = {
            "updated_at": {"S": updated_at},
            "kms_key": {"S": kms_key},
            **{f"slots.{slot}": {"B": blob} for slot, blob in slots.items()},
            **_field_attributes(fields),
        }
        key = self._key(customer_id, person_sort_key(person_id))
        return self._update_person(key, sets, expected_version, "person")

    def delete_person(self, customer_id: str, person_id: str, expected_version: int | None) -> None:
        condition = "attribute_exists(pk)"
        kwargs: dict[str, Any] = {}
        if expected_version is not None:
            condition += " AND #version = :expected"
            kwargs = {
                "ExpressionAttributeNames": {"#version": "version"},
                "ExpressionAttributeValues": {":expected": {"N": str(expected_version)}},
            }
        try:
            self._call(
                "delete_item",
                Key=self._key(customer_id, person_sort_key(person_id)),
                ConditionExpression=condition,
                **kwargs,
            )
        except ClientError as exc:
            raise condition_failed(expected_version, "person") from exc

    def get_person(self, customer_id: str, person_id: str) -> PersonRecord | None:
        response = self._call(
            "get_item",
            Key=self._key(customer_id, person_sort_key(person_id)),
            ConsistentRead=self._consistent,
        )
        item = response.get("Item")
        return _person_from_item(customer_id, item) if item else None

    def list_people(self, customer_id: str, limit: int, token: str | None) -> Page:
        kwargs: dict[str, Any] = {}
        if token is not None:
            kwargs["ExclusiveStartKey"] = self._key(customer_id, person_sort_key(decode_page_token(token)))
        response = self._call(
            "query",
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={
                ":pk": {"S": partition_key(customer_id)},
                ":prefix": {"S": "P#"},
            },
            Limit=limit,
            ConsistentRead=self._consistent,
            **kwargs,
        )
        items = [_person_from_item(customer_id, item) for item in response.get("Items", [])]
        last = response.get("LastEvaluatedKey")
        next_token = encode_page_token(last["sk"]["S"][2:]) if last else None
        return Page(items=items, next_token=next_token)

    def get_people(self, customer_id: str, person_ids: Sequence[str]) -> list[PersonRecord]:
        """The people that exist among ``person_ids``, in the order asked, via BatchGetItem.

        One request per 100 keys (the API's own maximum is one request); keys DynamoDB
        leaves unprocessed (throttling, 16 MB responses) are retried with backoff.
        """
        wanted = list(dict.fromkeys(person_ids))  # BatchGetItem refuses duplicate keys
        found: dict[str, PersonRecord] = {}
        for chunk in _chunks(wanted, BATCH_GET_MAX):
            keys = [self._key(customer_id, person_sort_key(pid)) for pid in chunk]
            for round_ in range(_BATCH_GET_ROUNDS):
                if round_:
                    self._sleep(min(0.05 * 2**round_, 1.0))
                request = {self._table: {"Keys": keys, "ConsistentRead": self._consistent}}
                try:
                    response = self._ddb.batch_get_item(RequestItems=request)
                except (ClientError, BotoCoreError) as exc:
                    raise translate(exc, "dynamodb", "BatchGetItem", StorageError) from exc
                for item in response.get("Responses", {}).get(self._table, []):
                    record = _person_from_item(customer_id, item)
                    found[record.person_id] = record
                keys = response.get("UnprocessedKeys", {}).get(self._table, {}).get("Keys", [])
                if not keys:
                    break
            else:
                raise ThrottledError("the database did not return every record; retry the request")
        return [found[pid] for pid in wanted if pid in found]

    # -- secrets --------------------------------------------------------------

    def _secret_item(self, secret: SecretVersion) -> dict[str, Any]:
        return {
            **self._key(secret.customer_id, secret_version_key(secret.secret_id, secret.version)),
            "type": {"S": "secret_version"},
            "id": {"S": secret.secret_id},
            "version": {"N": str(secret.version)},
            "created_at": {"S": secret.created_at},
            "kms_key": {"S": secret.kms_key},
            "slots": _slots_attribute(secret.slots),
            FIELD_PREFIX + "value": {"B": secret.value},
        }

    def add_secret_version(
        self, customer_id: str, secret_id: str, now: str, build: Callable[[int], SecretVersion]
    ) -> SecretVersion:
        """Store version latest+1 and move the head's counter in one transaction.

        The writer cannot read the head, so it guesses (last number it saw, else 0);
        a wrong guess fails the head's condition, DynamoDB hands back the head's
        counter (plaintext metadata only) and we try again with the right number.
        All or nothing: no gaps, no duplicates, no version without its counter.
        """
        guess = self._latest_seen.get((customer_id, secret_id), 0)
        for attempt in range(_SECRET_WRITE_ATTEMPTS):
            if attempt:
                self._backoff(attempt)
            if guess >= MAX_SECRET_VERSIONS:
                raise VersionLimitError(
                    f"a secret keeps at most {MAX_SECRET_VERSIONS} versions; delete it to start again"
                )
            secret = build(guess + 1)
            head_update = {
                "TableName": self._table,
                "Key": self._key(customer_id, secret_head_key(secret_id)),
                "UpdateExpression": (
                    "SET latest = :next, #type = :type, updated_at = :now, "
                    "created_at = if_not_exists(created_at, :now)"
                ),
                # A first version needs no head; any later one needs the head at `guess`
                # (a stale guess from before a delete must not skip numbers).
                "ConditionExpression": "attribute_not_exists(pk)" if guess == 0 else "latest = :guess",
                "ExpressionAttributeNames": {"#type": "type"},
                "ExpressionAttributeValues": {
                    ":next": {"N": str(secret.version)},
                    ":type": {"S": "secret"},
                    ":now": {"S": now},
                    **({":guess": {"N": str(guess)}} if guess else {}),
                },
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
            put_version = {
                "TableName": self._table,
                "Item": self._secret_item(secret),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
            try:
                self._transact([{"Update": head_update}, {"Put": put_version}], "TransactWriteItems")
            except _Cancelled as cancelled:
                head, version = cancelled.reasons[0], cancelled.reasons[1]
                if head.get("Code") == "ConditionalCheckFailed":
                    # The head's counter, or none at all: the secret was deleted meanwhile.
                    guess = int(head.get("Item", {}).get("latest", {}).get("N", 0))
                elif version.get("Code") == "ConditionalCheckFailed":
                    guess += 1  # an orphan version sits at guess+1: skip past it
                continue  # TransactionConflict: a concurrent writer won this round
            self._remember_latest(customer_id, secret_id, secret.version)
            return secret
        raise ConflictError("secret is being written concurrently; retry the request")

    def _backoff(self, attempt: int) -> None:
        """Full jitter, so writers that lost a race do not collide again in lockstep."""
        self._sleep(random.uniform(0, _BACKOFF_BASE_S * 2 ** min(attempt, 6)))  # noqa: S311 - not crypto

    def _remember_latest(self, customer_id: str, secret_id: str, version: int) -> None:
        if len(self._latest_seen) >= _LATEST_SEEN_MAX:
            self._latest_seen.clear()
        self._latest_seen[(customer_id, secret_id)] = version

    def _transact(self, items: list[dict[str, Any]], operation: str) -> None:
        """TransactWriteItems; a cancelled transaction is raised as _Cancelled with its reasons."""
        try:
            self._ddb.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise translate(exc, "dynamodb", operation, StorageError) from exc
            reasons = exc.response.get("CancellationReasons") or [{} for _ in items]
            codes = {reason.get("Code") for reason in reasons}
            if codes & _THROTTLED_REASONS:
                raise ThrottledError("dynamodb is throttling requests; retry later") from exc
            raise _Cancelled(reasons) from exc
        except BotoCoreError as exc:
            raise translate(exc, "dynamodb", operation, StorageError) from exc

    def delete_secret(self, customer_id: str, secret_id: str) -> None:
        """Delete every version, then the head, without ever reading a version.

        Bumping the head's counter is how a writer that cannot read learns it (the
        number it burns is never used: the head goes away). Up to 99 versions go in
        one transaction with the head, all or nothing; beyond that, batches delete
        oldest first, so an interrupted delete never resurrects an older value as the
        latest, and the head goes last, conditional on no version having been added.
        """
        head = self._key(customer_id, secret_head_key(secret_id))
        for _round in range(_SECRET_WRITE_ATTEMPTS):
            try:
                response = self._call(
                    "update_item",
                    Key=head,
                    UpdateExpression="ADD latest :one",
                    ConditionExpression="attribute_exists(pk)",
                    ExpressionAttributeValues={":one": {"N": "1"}},
                    ReturnValues="UPDATED_NEW",
                )
            except ClientError as exc:
                raise NotFoundError("secret not found") from exc
            latest = int(response["Attributes"]["latest"]["N"])
            keys = [self._key(customer_id, secret_version_key(secret_id, v)) for v in range(1, latest + 1)]
            delete_head = {
                "TableName": self._table,
                "Key": head,
                "ConditionExpression": "latest = :latest",
                "ExpressionAttributeValues": {":latest": {"N": str(latest)}},
            }
            try:
                if len(keys) < _TRANSACT_MAX:
                    deletes = [{"Delete": {"TableName": self._table, "Key": key}} for key in keys]
                    self._transact([*deletes, {"Delete": delete_head}], "TransactWriteItems")
                else:
                    for chunk in _chunks(keys, _BATCH_WRITE_MAX):
                        self._batch_delete(chunk)
                    self._call("delete_item", **{k: v for k, v in delete_head.items() if k != "TableName"})
            except (_Cancelled, ClientError):
                continue  # a new version was added meanwhile: delete it too
            self._latest_seen.pop((customer_id, secret_id), None)
            return
        raise ConflictError("secret is being written concurrently; retry the delete")

    def _batch_delete(self, keys: list[dict[str, Any]]) -> None:
        requests = [{"DeleteRequest": {"Key": key}} for key in keys]
        for _attempt in range(8):
            try:
                response = self._ddb.batch_write_item(RequestItems={self._table: requests})
            except (ClientError, BotoCoreError) as exc:
                raise translate(exc, "dynamodb", "BatchWriteItem", StorageError) from exc
            requests = response.get("UnprocessedItems", {}).get(self._table, [])
            if not requests:
                return
        raise ThrottledError("the database did not accept every delete; retry the request")

    def get_secret(self, customer_id: str, secret_id: str, version: int | None) -> SecretVersion | None:
        if version is not None:
            response = self._call(
                "get_item",
                Key=self._key(customer_id, secret_version_key(secret_id, version)),
                ConsistentRead=self._consistent,
            )
            item = response.get("Item")
            return _secret_from_item(customer_id, item) if item else None
        response = self._call(
            "query",
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={
                ":pk": {"S": partition_key(customer_id)},
                ":prefix": {"S": secret_version_prefix(secret_id)},
            },
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=self._consistent,
        )
        items = response.get("Items", [])
        return _secret_from_item(customer_id, items[0]) if items else None

    def list_secret_versions(self, customer_id: str, secret_id: str) -> list[SecretVersion]:
        """Version metadata only: the projection never fetches ciphertext."""
        out: list[SecretVersion] = []
        kwargs: dict[str, Any] = {}
        while True:
            response = self._call(
                "query",
                KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
                ExpressionAttributeValues={
                    ":pk": {"S": partition_key(customer_id)},
                    ":prefix": {"S": secret_version_prefix(secret_id)},
                },
                ProjectionExpression="sk, created_at",
                ConsistentRead=self._consistent,
                **kwargs,
            )
            out.extend(_secret_from_item(customer_id, item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return out
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def _slots_attribute(slots: Mapping[str, bytes]) -> dict[str, Any]:
    """Slot name -> wrapped data key, as one DynamoDB map of binaries."""
    return {"M": {slot: {"B": blob} for slot, blob in slots.items()}}


def _slots_from(item: dict[str, Any]) -> dict[str, bytes]:
    return {slot: _blob(value) for slot, value in item.get("slots", {}).get("M", {}).items()}


def _field_attributes(fields: Mapping[str, bytes]) -> dict[str, Any]:
    """Field name -> ciphertext, as ``f_<field>`` binary attributes."""
    return {FIELD_PREFIX + name: {"B": blob} for name, blob in fields.items()}


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _blob(attribute: dict[str, Any]) -> bytes:
    value = attribute["B"]
    return value if isinstance(value, bytes) else bytes(value)


def _parsed(parse: Callable[[str, dict[str, Any]], Any]) -> Callable[[str, dict[str, Any]], Any]:
    """A stored item missing an attribute or holding the wrong type was tampered with:
    an integrity error, like a ciphertext that fails authentication, never a crash."""

    def parse_checked(customer_id: str, item: dict[str, Any]) -> Any:
        try:
            return parse(customer_id, item)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise IntegrityError("a stored item is malformed") from None

    return parse_checked


@_parsed
def _person_from_item(customer_id: str, item: dict[str, Any]) -> PersonRecord:
    return PersonRecord(
        customer_id=customer_id,
        person_id=item["sk"]["S"][2:],  # from the key, as for secrets
        version=int(item["version"]["N"]),
        created_at=item["created_at"]["S"],
        updated_at=item["updated_at"]["S"],
        kms_key=item.get("kms_key", {}).get("S", ""),
        slots=_slots_from(item),
        fields={
            name[len(FIELD_PREFIX) :]: _blob(value)
            for name, value in item.items()
            if name.startswith(FIELD_PREFIX)
        },
    )


@_parsed
def _secret_from_item(customer_id: str, item: dict[str, Any]) -> SecretVersion:
    # Identity comes from the key, not from attributes a tamperer could edit: the AAD
    # is then built from where the item sits, so bytes moved between versions fail.
    secret_id, _, version = item["sk"]["S"][2:].rpartition("#V#")
    return SecretVersion(
        customer_id=customer_id,
        secret_id=secret_id,
        version=int(version),
        created_at=item["created_at"]["S"],
        kms_key=item.get("kms_key", {}).get("S", ""),
        slots=_slots_from(item),
        value=_blob(item.get(FIELD_PREFIX + "value", {"B": b""})),
    )
