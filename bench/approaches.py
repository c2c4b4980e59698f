"""The baselines: one KMS call per field, and the AWS Encryption SDK per field or per record."""

from __future__ import annotations

import json
from typing import Any

from bench.aws import DynamoMeter, KmsMeter, ddb_client, kms_client, person_key
from chalicelib.domain.validation import decode_field, encode_field

APP = "pii-vault"
FIELDS = ("name", "surname", "email", "dob", "address")


class Approach:
    """Writes one record, reads one record back; subclasses pick the encryption."""

    name = ""
    customer_id = ""
    batch_reads = False

    def __init__(self, resources: dict[str, str], meter: KmsMeter, ddb_meter: DynamoMeter | None = None) -> None:
        self.key_arn = resources["key_arn"]
        self.table = resources["table_name"]
        self.meter = meter
        self.ddb_meter = ddb_meter or DynamoMeter()
        self.ddb = ddb_client(self.ddb_meter)

    def write(self, index: int, person: dict[str, Any]) -> None:
        raise NotImplementedError

    def read(self, index: int) -> dict[str, Any]:
        raise NotImplementedError

    def read_batch(self, indexes: list[int]) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _key(self, index: int) -> dict[str, Any]:
        return person_key(self.customer_id, f"{index:032x}")

    def _context(self, index: int, name: str | None = None) -> dict[str, str]:
        context = {"app": APP, "customer_id": self.customer_id, "record_id": f"{index:032x}"}
        return {**context, "field": name} if name else context


class NaivePerFieldKms(Approach):
    name, customer_id = "naive-per-field-kms", "bench-naive"

    def __init__(self, resources: dict[str, str], meter: KmsMeter, ddb_meter: DynamoMeter | None = None) -> None:
        super().__init__(resources, meter, ddb_meter)
        self.kms = kms_client(meter)

    def write(self, index: int, person: dict[str, Any]) -> None:
        item = dict(self._key(index))
        for name in FIELDS:
            blob = self.kms.encrypt(
                KeyId=self.key_arn, Plaintext=encode_field(person[name]), EncryptionContext=self._context(index, name)
            )["CiphertextBlob"]
            item[name] = {"B": blob}
        self.ddb.put_item(TableName=self.table, Item=item)

    def read(self, index: int) -> dict[str, Any]:
        item = self.ddb.get_item(TableName=self.table, Key=self._key(index), ConsistentRead=True)["Item"]
        return {
            name: decode_field(
                name,
                self.kms.decrypt(
                    KeyId=self.key_arn, CiphertextBlob=item[name]["B"], EncryptionContext=self._context(index, name)
                )["Plaintext"],
            )
            for name in FIELDS
        }


class _Esdk(Approach):
    def __init__(self, resources: dict[str, str], meter: KmsMeter, ddb_meter: DynamoMeter | None = None) -> None:
        super().__init__(resources, meter, ddb_meter)
        import aws_encryption_sdk
        import botocore.session
        from aws_encryption_sdk import CommitmentPolicy

        session = botocore.session.Session()
        meter.attach(session)  # the provider builds its own KMS client from this session
        self.esdk = aws_encryption_sdk.EncryptionSDKClient(
            commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
        )
        self.provider = aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(
            key_ids=[self.key_arn], botocore_session=session
        )

    def _encrypt(self, plaintext: bytes, context: dict[str, str]) -> bytes:
        message: bytes = self.esdk.encrypt(source=plaintext, key_provider=self.provider, encryption_context=context)[0]
        return message

    def _decrypt(self, message: bytes, context: dict[str, str]) -> bytes:
        plaintext, header = self.esdk.decrypt(source=message, key_provider=self.provider)
        # The ESDK authenticates the context but does not compare it with what we expect.
        if any(header.encryption_context.get(k) != v for k, v in context.items()):
            raise RuntimeError("encryption context mismatch")
        opened: bytes = plaintext
        return opened


class EsdkPerField(_Esdk):
    name, customer_id = "aws-encryption-sdk-per-field", "bench-esdk-field"

    def write(self, index: int, person: dict[str, Any]) -> None:
        item = dict(self._key(index))
        for name in FIELDS:
            item[name] = {"B": self._encrypt(encode_field(person[name]), self._context(index, name))}
        self.ddb.put_item(TableName=self.table, Item=item)

    def read(self, index: int) -> dict[str, Any]:
        item = self.ddb.get_item(TableName=self.table, Key=self._key(index), ConsistentRead=True)["Item"]
        return {name: decode_field(name, self._decrypt(item[name]["B"], self._context(index, name))) for name in FIELDS}


class EsdkPerRecord(_Esdk):
    name, customer_id = "aws-encryption-sdk-per-record", "bench-esdk-record"

    def write(self, index: int, person: dict[str, Any]) -> None:
        document = json.dumps({name: person[name] for name in FIELDS}, separators=(",", ":"), ensure_ascii=False)
        item = {**self._key(index), "record": {"B": self._encrypt(document.encode(), self._context(index))}}
        self.ddb.put_item(TableName=self.table, Item=item)

    def read(self, index: int) -> dict[str, Any]:
        item = self.ddb.get_item(TableName=self.table, Key=self._key(index), ConsistentRead=True)["Item"]
        person: dict[str, Any] = json.loads(self._decrypt(item["record"]["B"], self._context(index)))
        return person
