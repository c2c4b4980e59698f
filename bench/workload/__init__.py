"""Workload model: KMS calls per record written and read under a realistic multi-tenant load.

    python -m bench.workload [--out docs] [--seed 14] [--measure-s 600] [--churn-mean-s 3600] [--design today]
                             [--jobs N]

Also run by ``make bench`` (bench/run.py; ``--skip-workload`` leaves it out).

A deterministic simulation (seeded RNG, simulated clock: no sleeping, no threads) that
drives the production key objects (``Sealer``/``Opener`` from ``chalicelib/envelope/format.py``;
``FreshDataKeys``/``CachingDataKeys``, ``CachingUnwrapper`` and ``KmsEncryptor``/``KmsDecryptor``
from ``chalicelib/keys/kms.py``) over a fake KMS client that counts calls.
Every container is its own set of those objects, built as ``chalicelib/api/__init__.py``
builds them at the default bounds of ``chalicelib/support/config.py`` (see ``Production``, the one
place that constructs and calls them).

Model
-----
- ``tenants`` tenants, popularity Zipf(s=1.1) (rank k has weight k**-1.1).
- ``writers`` warm writer containers and ``readers`` warm reader containers; each request
  goes to a container chosen uniformly at random.
- Writes at ``write_rate``/s and reads at ``read_rate``/s, Poisson (or fixed inter-arrival).
- Churn: a container is replaced after an exponential lifetime (mean ``churn_mean_s``);
  the new one starts with empty caches.
- A read picks a record either uniformly among those written in the last ``history_s``
  ("uniform") or with an exponential age of mean ``recent_mean_s`` ("recent"); the reader
  seals nothing itself: the record's field is sealed under the data key the writer used
  for it and opened through the reader container's ``Opener``.
- Measured: Encrypt calls / records written and KMS calls / records read (Decrypt, plus
  GenerateMac for the fleet table's sealing keys), and fleet key table GetItem / PutItem
  per read, in a window of ``measure_s`` after a warm-up (``warmup_s`` of writes, the last
  ``read_warmup_s`` of it with reads too; today's caches forget everything older than 300 s).

Designs (``DESIGNS``), each pinning the settings that define it:

- ``today``: the design before issue 14, pinned whatever ``chalicelib/support/config.py``'s defaults
  become: tenant-scoped writer keys (``Sealer(scope="tenant")``) cached 300 s / 1000 records
  per tenant per container, reader ``CachingUnwrapper`` 300 s / 1000 entries, no fleet table.
- ``pool``: pool-scoped writer keys (``Sealer(scope="pool")``, one key per warm writer
  container per period, at the config defaults: 3600 s / 100,000 records); readers as today.
- ``pool+fleet``: ``pool`` plus the reader fleet key table as the reader stage wires it:
  per container ``CachingUnwrapper`` -> ``FleetKeyTable`` (one ``FakeFleetTable`` shared by
  all reader containers; per container ``FleetSealingKeys`` over ``KmsMacKey``) -> KMS Decrypt.
  Its writer history is ``PoolHistory`` (keys named per container and period, no stream fed,
  writers continue from history into the live run) and its fleet table starts in its steady
  state (``PoolHistory.warm``: per key, the renewal chain of table stores walked from the
  key's first record); both checked against a live simulation in tests/unit/test_workload.py.

Timeline and the history shortcut (how records written before the live run get their keys
without being enumerated): see ``bench/workload/history.py``.

Cost: about 80 s of CPU for the whole table (three designs x five rows x two localities):
about 35 s for ``today`` (rows whose shared history streams must be generated: 1,000 and
10,000 tenants), the rest playing the live reads through the production objects; simulations
run in ``--jobs`` worker processes (default: one per CPU).

Adding a design: subclass ``Design`` (writer and reader container factories, optionally a
fleet-wide object shared by reader containers, whether writer keys are per tenant, the
longest span of one writer key, the ``Settings`` it pins, its ``history``) and add it to
``DESIGNS``; rows are printed side by side for every design. Pool-scoped writer keys use
``PoolHistory`` (keys named per container and period) instead of per-tenant streams.

Modules: ``fakes`` (simulated clock, counting KMS and fleet table), ``production`` (the
adapter over the production key objects), ``scenario`` (scenarios, results, Zipf),
``designs``, ``history`` (per-tenant streams), ``pool_history`` (pool keys),
``fleet_warmup`` (the fleet table at time 0), ``simulation``, ``report`` (rows, table,
workload.json), ``__main__`` (the command line).
"""

from bench.workload.designs import DESIGNS, Design, PoolDesign, PoolFleetDesign, TodayDesign
from bench.workload.fakes import CountingBytes, FakeFleetTable, FakeKmsClient, SimClock
from bench.workload.history import History
from bench.workload.pool_history import PoolHistory
from bench.workload.production import Fleet, Production
from bench.workload.report import report_workload, run_table
from bench.workload.scenario import Result, Scenario, tenant_name, zipf_cumulative
from bench.workload.simulation import Simulation

__all__ = [
    "DESIGNS",
    "CountingBytes",
    "Design",
    "FakeFleetTable",
    "FakeKmsClient",
    "Fleet",
    "History",
    "PoolDesign",
    "PoolFleetDesign",
    "PoolHistory",
    "Production",
    "Result",
    "Scenario",
    "SimClock",
    "Simulation",
    "TodayDesign",
    "report_workload",
    "run_table",
    "tenant_name",
    "zipf_cumulative",
]
