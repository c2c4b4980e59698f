"""Rewrap benchmark row: records/s and kms:ReEncrypt calls per record, caches on and off.

    python -m bench.rewrap [--size quick|full] [--records 10000] [--segments 4] [--out docs/benchmark-rewrap.json]

On moto (in process, no KMS latency): seeds ``--records`` person-shaped items whose field
blobs (one full-view and one masked-view field, each view under its own data key) are
sealed with the real format, then rewraps every tenant from the shared key to a
new key with the job's own code (chalicelib/service/rewrap.py), once with the writer's caches on
(pool keys: one wrapped data key shared by every record) and once with them off (one data
key per record). ``--records``: 1,000 at the quick size (``make bench``), 10,000 at the full one.

What the row shows: ReEncrypt calls per record (the KMS cost, exact). Records/s here is
moto's in-process DynamoDB (each parallel-scan page walks the table), with no KMS latency:
a lower bound shape, not an AWS figure; on AWS each distinct key adds one ReEncrypt round trip.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.aws import aws_sandbox
from bench.sizes import add_size_argument, size_from_argv
from bench.stages import REGION
from chalicelib.envelope.format import KIND_MASKED_POOL, KIND_POOL, RecordRef, encryption_context, seal_field
from chalicelib.keys.reencrypt import KmsReEncryptor
from chalicelib.service.jobs import Control, SegmentRun
from chalicelib.service.rewrap import RewrapPlan, rewrap_segment
from chalicelib.store import layout
from chalicelib.store.job_items import DynamoDbSlotItems

APP = "pii-vault"
TENANTS = 50


def _seed(kms: Any, ddb: Any, table: str, key: str, records: int, *, cached: bool) -> None:
    """Person-shaped items as writers before format v3 left them (a v3 record's keys move in the
    key table, once per data key): a full view and a masked view, each
    with its own data key (pool contexts); ``cached`` shares each view's key across records."""
    shared: dict[int, tuple[bytes, bytes]] = {}
    batch: list[dict[str, Any]] = []
    for i in range(records):
        for kind in (KIND_POOL, KIND_MASKED_POOL):
            if kind not in shared or not cached:
                data_key = os.urandom(32)
                context = encryption_context(APP, "", kind)
                wrapped = kms.encrypt(KeyId=key, Plaintext=data_key, EncryptionContext=context)["CiphertextBlob"]
                shared[kind] = (data_key, wrapped)
        customer, person_id = f"t{i % TENANTS}", os.urandom(16).hex()
        ref = RecordRef(customer, "person", person_id)
        (full_key, full_wrapped), (masked_key, masked_wrapped) = shared[KIND_POOL], shared[KIND_MASKED_POOL]
        item = {
            **layout.person_key(customer, person_id),
            layout.KMS_KEY: {"S": key},
            layout.SLOTS: layout.slots_attribute({"0": full_wrapped}),
            **layout.field_attributes({"name": seal_field(full_key, ref, "name", "0", b"x", kind=KIND_POOL)}),
            # The masked view as writers before format v3 left it (m_<field>, mk_<slot>).
            layout.MASKED_PREFIX + "name": {"B": seal_field(masked_key, ref, "name", "0", b"x", kind=KIND_MASKED_POOL)},
            layout.MASKED_SLOT_PREFIX + "0": {"B": masked_wrapped},
        }
        batch.append({"PutRequest": {"Item": item}})
        if len(batch) == 25:
            ddb.batch_write_item(RequestItems={table: batch})
            batch = []
    if batch:
        ddb.batch_write_item(RequestItems={table: batch})


def run_case(records: int, segments: int, *, cached: bool) -> dict[str, Any]:
    import boto3

    with aws_sandbox() as resources:
        kms = boto3.client("kms", region_name=REGION)
        ddb = boto3.client("dynamodb", region_name=REGION)
        table = resources["table_name"]
        source = resources["key_arn"]
        target = kms.create_key()["KeyMetadata"]["Arn"]
        _seed(kms, ddb, table, source, records, cached=cached)
        plan = RewrapPlan(source, target, None, APP)
        items, control = DynamoDbSlotItems(ddb, table), Control()

        def reencryptor(source_key: str, target_key: str) -> KmsReEncryptor:
            return KmsReEncryptor(kms, source_key, target_key)

        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=segments) as pool:
            results = list(
                pool.map(
                    lambda s: rewrap_segment(plan, SegmentRun("bench", s, segments), items, reencryptor, control),
                    range(segments),
                )
            )
        seconds = time.perf_counter() - start
    moved = sum(r.counts["items_rewrapped"] for r in results)
    calls = sum(r.counts["reencrypt_calls"] for r in results)
    return {
        "caches": "on (pool keys)" if cached else "off (one key per record)",
        "records": records,
        "segments": segments,
        "rewrapped": moved,
        "seconds": round(seconds, 2),
        "records_per_s": round(moved / seconds, 1) if seconds else None,
        "reencrypt_calls": calls,
        "reencrypt_calls_per_record": round(calls / records, 5) if records else None,
    }


def main(argv: list[str] | None = None) -> int:
    size = size_from_argv(argv)
    parser = argparse.ArgumentParser(prog="python -m bench.rewrap", description=(__doc__ or "").split("\n")[0])
    add_size_argument(parser)
    parser.add_argument("--records", type=int, default=size.rewrap_records)
    parser.add_argument("--segments", type=int, default=4)
    parser.add_argument("--out", type=Path, default=None, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    rows = [run_case(args.records, args.segments, cached=c) for c in (True, False)]
    for row in rows:
        print(
            f"rewrap {row['records']} records, caches {row['caches']}: {row['records_per_s']} records/s, "
            f"{row['reencrypt_calls_per_record']} ReEncrypt calls per record ({row['reencrypt_calls']} calls)"
        )
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
