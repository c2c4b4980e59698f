"""pii-vault itself: writer and reader over chalice.test.Client, caches off, on, multi-get reads,
and writes with the masked projection (as deployed) against writes without it."""

from __future__ import annotations

import json
from typing import Any

from bench.approaches import Approach, EsdkPerField, EsdkPerRecord, NaivePerFieldKms
from bench.aws import DynamoMeter, KmsMeter, ddb_client, kms_client
from bench.stages import REGION, stage_environment

# Every data key cache off: the writer's, the reader container's and the reader fleet's key table.
NO_CACHE = {
    "PII_VAULT_WRITER_KEY_CACHE_SECONDS": "0",
    "PII_VAULT_WRITER_KEY_CACHE_MAX_RECORDS": "0",
    "PII_VAULT_READER_KEY_CACHE_SECONDS": "0",
    "PII_VAULT_READER_KEY_CACHE_MAX_ENTRIES": "0",
    "PII_VAULT_FLEET_KEY_LIFETIME_SECONDS": "0",
}


class PiiVault(Approach):
    """The shipped app, writer and reader, over chalice.test.Client with each stage's settings as the
    local stack gives them (the registry's variables: tables, keys, the fleet key table, the tenant
    registry; caches at their shipped bounds unless ``cache_env`` says otherwise)."""

    cache_env: dict[str, str] | None = None
    masked_view = True  # the writer seals masked projections (docs/masked.md), as deployed

    def __init__(self, resources: dict[str, str], meter: KmsMeter, ddb_meter: DynamoMeter | None = None) -> None:
        super().__init__(resources, meter, ddb_meter)
        from chalice.test import Client

        from chalicelib.stages import settings_for
        from chalicelib.stages.app import create_app

        def http(stage: str) -> Any:
            env = {**stage_environment(stage, resources), "AWS_DEFAULT_REGION": REGION, **(self.cache_env or {})}
            app = create_app(
                settings=settings_for(env),
                kms_client=kms_client(meter, stage),
                dynamodb_client=ddb_client(self.ddb_meter, stage),
                masked_view=self.masked_view,
            )
            return Client(app).http

        self.ids: dict[int, str] = {}
        self.writer = http("writer")
        self.reader = http("reader")

    def write(self, index: int, person: dict[str, Any]) -> None:
        response = self.writer.post(
            f"/customers/{self.customer_id}/people",
            body=json.dumps(person),
            headers={"Content-Type": "application/json"},
        )
        if response.status_code != 201:
            raise RuntimeError(f"write failed: {response.status_code}")
        self.ids[index] = json.loads(response.body)["id"]

    def read(self, index: int) -> dict[str, Any]:
        response = self.reader.get(f"/customers/{self.customer_id}/people/{self.ids[index]}")
        if response.status_code != 200:
            raise RuntimeError(f"read failed: {response.status_code}")
        data: dict[str, Any] = json.loads(response.body)["data"]
        return data

    def read_batch(self, indexes: list[int]) -> list[dict[str, Any]]:
        ids = ",".join(self.ids[i] for i in indexes)
        response = self.reader.get(f"/customers/{self.customer_id}/people?ids={ids}")
        body = json.loads(response.body)
        if response.status_code != 200 or body["missing"]:
            raise RuntimeError(f"multi-get failed: {response.status_code}")
        by_id = {item["id"]: item["data"] for item in body["items"]}
        return [by_id[self.ids[i]] for i in indexes]


class PiiVaultCacheOff(PiiVault):
    name, customer_id, cache_env = "pii-vault-cache-off", "bench-pv-off", NO_CACHE


class PiiVaultCacheOn(PiiVault):
    name, customer_id = "pii-vault-cache-on", "bench-pv-on"


class PiiVaultCacheOnMultiget(PiiVault):
    name, customer_id, batch_reads = "pii-vault-cache-on-multiget", "bench-pv-multi", True


# Writes with the masked projection (the rows above, as deployed) against writes without it.
class PiiVaultCacheOffNoMasked(PiiVault):
    name, customer_id, cache_env, masked_view = "pii-vault-cache-off-no-masked-view", "bench-pv-off-nm", NO_CACHE, False


class PiiVaultCacheOnNoMasked(PiiVault):
    name, customer_id, masked_view = "pii-vault-cache-on-no-masked-view", "bench-pv-on-nm", False


APPROACHES: tuple[type[Approach], ...] = (
    NaivePerFieldKms,
    EsdkPerField,
    EsdkPerRecord,
    PiiVaultCacheOff,
    PiiVaultCacheOn,
    PiiVaultCacheOnMultiget,
    PiiVaultCacheOffNoMasked,
    PiiVaultCacheOnNoMasked,
)
