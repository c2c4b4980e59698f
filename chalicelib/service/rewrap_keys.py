"""Rewrap of the key table (format v3): each data key moved once, however many records name it.

Format v3 records hold key references; the wrapped data keys live once in the key table
(``chalicelib/store/key_table.py``). Moving them to another KMS key is one ``kms:ReEncrypt``
and one conditional UpdateItem per data key, not per record: a pool key serves thousands of
records of many tenants. The references stay the same (a reference commits to the data key,
which a rewrap does not change), so no record is touched.

Scope as for items (``chalicelib/service/rewrap.py``): one tenant (its two partitions, full
and masked view, one Query each: its tenant-scoped keys) or every tenant (a parallel scan;
pool keys too). Each entry is updated only if it still holds the wrapped key read (an
entry is written once by a writer and changed only by a rewrap), and its ``k`` names the
target once moved. The verify pass asks KMS, without Decrypt, whether each entry is under
the target. Dry runs call no KMS and write nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from chalicelib.keys.reencrypt import RewrapMap
from chalicelib.service.jobs import Processor
from chalicelib.store import key_table
from chalicelib.store.dynamodb import Item
from chalicelib.store.key_table import KeyEntries

KEY_TABLE_WRITE_ATTRIBUTES = (key_table.PARTITION, key_table.REFERENCE, key_table.WRAPPED, key_table.KMS_KEY)


def metered(rewrap_map: RewrapMap, each: Callable[[Item, Counter[str]], None]) -> Processor:
    """A rewrap or verify pass over a page: ``each`` item counted into the page's counts, and
    the ``kms:ReEncrypt`` calls the page cost as ``reencrypt_calls`` (every pass, items and keys)."""

    def process(items: list[Item]) -> Counter[str]:
        counts: Counter[str] = Counter()
        calls_before = rewrap_map.calls
        for item in items:
            each(item, counts)
        counts["reencrypt_calls"] += rewrap_map.calls - calls_before
        return counts

    return process


def key_table_processor(
    entries: KeyEntries, target_key: str, app_name: str, dry_run: bool, rewrap_map: RewrapMap
) -> Processor:
    """ReEncrypt each entry under the source to the target (one KMS call per distinct wrapped key)."""

    def each(item: Item, counts: Counter[str]) -> None:
        context = key_table.context_of(item[key_table.PARTITION]["S"], app_name)
        if context is None:
            counts["keys_unknown_partition"] += 1
            return
        counts["keys_seen"] += 1
        if dry_run:
            counts["would_rewrap_keys"] += 1
            return
        new = rewrap_map.new_blob(key_table.wrapped_of(item), context)
        if new is None:
            counts["keys_not_under_source"] += 1
        elif entries.rewrap(item, new, target_key):
            counts["keys_rewrapped"] += 1
        else:
            counts["keys_changed_meanwhile"] += 1

    return metered(rewrap_map, each)


def key_table_verify_processor(app_name: str, checker: RewrapMap) -> Processor:
    """Count the entries in scope under the target (``checker`` maps target -> target)."""

    def each(item: Item, counts: Counter[str]) -> None:
        context = key_table.context_of(item[key_table.PARTITION]["S"], app_name)
        if context is None or checker.new_blob(key_table.wrapped_of(item), context) is None:
            counts["keys_not_under_target"] += 1
        else:
            counts["verified_keys"] += 1

    return metered(checker, each)
