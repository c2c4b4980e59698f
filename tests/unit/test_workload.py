"""Workload model (bench/workload/): KMS call counting on tiny scenarios through the production caches."""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, replace
from typing import Any

import pytest

from bench.workload import (
    History,
    PoolDesign,
    PoolFleetDesign,
    Production,
    Result,
    Scenario,
    Simulation,
    TodayDesign,
    tenant_name,
    zipf_cumulative,
)
from chalicelib.support import config

TINY = Scenario(
    "tiny",
    tenants=5,
    writers=2,
    readers=2,
    write_rate=2,
    read_rate=2,
    history_s=1800,
    locality="uniform",
    churn_mean_s=600,
    warmup_s=300,
    read_warmup_s=300,
    measure_s=300,
    seed=7,
)
CACHES_OFF = {"writer_key_cache_seconds": 0, "reader_key_cache_seconds": 0}


def run(scenario: Scenario, **bounds: int) -> Result:
    return Simulation(scenario, TodayDesign(Production(**bounds))).run()


@pytest.mark.parametrize("locality", ["uniform", "recent"])
def test_given_caches_off_when_simulated_then_every_write_costs_one_encrypt_and_every_read_one_decrypt(
    locality: str,
) -> None:
    result = run(replace(TINY, locality=locality), **CACHES_OFF)
    assert result.writes > 0 and result.reads > 0
    assert result.encrypt_calls == result.writes
    assert result.decrypt_calls == result.reads
    if locality == "uniform":
        assert result.history_reads > 0  # the history shortcut was exercised


def test_given_one_tenant_one_container_when_keys_are_bounded_by_records_then_one_encrypt_per_max_records() -> None:
    scenario = replace(
        TINY,
        tenants=1,
        writers=1,
        readers=1,
        write_rate=10,
        churn_mean_s=None,
        arrivals="fixed",
        warmup_s=0,
        measure_s=97,
    )
    result = run(scenario, writer_key_cache_max_records=10)
    assert result.writes == 970
    assert result.encrypt_calls == math.ceil(970 / 10)


def test_given_one_tenant_one_container_when_keys_are_bounded_by_time_then_one_encrypt_per_max_age() -> None:
    scenario = replace(
        TINY,
        tenants=1,
        writers=1,
        readers=1,
        write_rate=1,
        churn_mean_s=None,
        arrivals="fixed",
        warmup_s=0,
        measure_s=100,
    )
    result = run(scenario, writer_key_cache_seconds=5)
    assert result.writes == 100
    assert result.encrypt_calls == 100 // 5


def test_given_default_caches_when_one_tenant_reads_recent_records_then_reads_mostly_hit_the_reader_cache() -> None:
    scenario = replace(TINY, tenants=1, writers=1, readers=1, write_rate=10, read_rate=10, locality="recent")
    result = run(scenario)
    assert result.decrypt_calls < result.reads / 10
    assert result.encrypt_calls < result.writes / 100


def test_given_a_seed_when_simulated_twice_then_the_counts_are_identical_and_another_seed_differs() -> None:
    def counts(scenario: Scenario) -> dict[str, object]:
        return {k: v for k, v in asdict(run(scenario)).items() if k != "seconds"}

    assert counts(TINY) == counts(TINY)
    assert counts(TINY) != counts(replace(TINY, seed=8))


def test_given_a_history_stream_when_records_are_looked_up_then_keys_follow_the_writer_cache_and_survive_eviction() -> (
    None
):
    scenario = replace(TINY, tenants=1, writers=1, write_rate=10, churn_mean_s=None, history_s=600)
    design = TodayDesign(Production(writer_key_cache_max_records=10))
    history = History(scenario, design, zipf_cumulative(1), [tenant_name(0)])
    near = [history.record(0, 0, -300.0 + k * 1e-6).wrapped_key.blob for k in range(3)]
    spread = {history.record(0, 0, -600.0 + k * 10.0).wrapped_key.blob for k in range(60)}
    assert near[0] == near[1] == near[2]  # same run: one key for ~10 records (about 1 s)
    assert len(spread) == 60  # 10 s apart: always another key
    history._memo.clear()  # a rebuilt stream makes the same blobs
    assert history.record(0, 0, -300.0).wrapped_key.blob == near[0]
    assert history.writes_fed >= 3000  # the stream up to -300 s went through the production writer cache


def test_given_the_history_shortcut_when_compared_with_simulating_all_history_live_then_read_costs_agree() -> None:
    base = replace(TINY, tenants=20, writers=3, write_rate=5, read_rate=5, history_s=1800, churn_mean_s=900)
    shortcut = replace(base, warmup_s=600, read_warmup_s=600, measure_s=600)
    live = replace(base, warmup_s=600 + 1800, read_warmup_s=600, measure_s=600)  # reads never reach before 0

    def mean_read_cost(scenario: Scenario) -> float:
        return statistics.mean(run(replace(scenario, seed=seed)).read_calls_per_record for seed in range(3))

    assert run(shortcut).history_reads > 0 and run(live).history_reads == 0
    assert mean_read_cost(shortcut) == pytest.approx(mean_read_cost(live), abs=0.05)


def test_given_many_tenants_and_busy_writers_when_checked_then_the_scenario_is_refused() -> None:
    with pytest.raises(ValueError, match="evict"):
        Simulation(replace(TINY, tenants=5000, writers=1, write_rate=20), TodayDesign(Production()))


def test_given_the_config_defaults_changed_when_today_is_built_then_it_keeps_the_design_before_issue_14() -> None:
    today = TodayDesign(Production()).production
    assert (config.DEFAULT_KEY_SCOPE, config.DEFAULT_WRITER_KEY_CACHE_SECONDS) == ("pool", 3600)  # what v2 ships
    assert today.writer_settings.key_scope == "tenant"
    assert (today.writer_settings.writer_key_cache_seconds, today.writer_settings.writer_key_cache_max_records) == (
        300,
        1000,
    )
    assert (today.reader_settings.reader_key_cache_seconds, today.reader_settings.reader_key_cache_max_entries) == (
        300,
        1000,
    )
    assert not today.fleet_enabled()
    assert TodayDesign(Production(writer_key_cache_seconds=0)).production.writer_settings.writer_key_cache_seconds == 0


# --------------------------------------------------------------------------- pool scope and the fleet key table

# One writer, no churn, fixed arrivals.
STILL = replace(TINY, writers=1, readers=1, write_rate=1, read_rate=1, churn_mean_s=None, arrivals="fixed")


def pool_run(scenario: Scenario, design: type[PoolDesign] = PoolFleetDesign, **bounds: int) -> Result:
    return Simulation(scenario, design(Production(**bounds))).run()


@pytest.mark.parametrize("tenants", [1, 50, 5000])
def test_given_one_writer_and_no_churn_when_pool_scoped_then_one_encrypt_per_view_per_hour_whatever_the_tenant_count(
    tenants: int,
) -> None:
    # No history: the writer starts empty at 0 (reads are few and beside the point here).
    scenario = replace(STILL, tenants=tenants, history_s=0, read_rate=0.01, warmup_s=0, measure_s=3 * 3600 + 100)
    result = pool_run(scenario)
    assert result.writes == 3 * 3600 + 100
    # Two views (full and masked, docs/masked.md): two keys per period, renewed together.
    assert result.encrypt_calls == 2 * math.ceil(result.writes / config.DEFAULT_WRITER_KEY_CACHE_SECONDS) == 8


def test_given_the_fleet_table_when_many_reader_containers_read_the_same_keys_then_one_decrypt_per_key() -> None:
    # The writer holds the history key made at about -600 s (until about 3000 s), then makes one
    # more; reads of recent records (mean age 60 s) from 600 s to 6600 s meet exactly those two.
    scenario = replace(
        STILL,
        tenants=30,
        readers=5,
        read_rate=5,
        history_s=600,
        locality="recent",
        recent_mean_s=60,
        warmup_s=600,
        read_warmup_s=0,
        measure_s=6000,
    )
    fleet = pool_run(scenario)
    alone = pool_run(scenario, PoolDesign)
    assert fleet.encrypt_calls == alone.encrypt_calls == 2  # the full and the masked view's key
    assert fleet.history_reads == 0
    # One Decrypt per key for the whole fleet; the first key's may have been paid before 0 (its
    # entry then comes from the warm-up, sealed in the epoch before 0: a second sealing key).
    assert fleet.decrypt_calls + fleet.fleet_entries_at_start == 2 and fleet.fleet_puts == fleet.decrypt_calls
    assert fleet.mac_calls == 5 * (1 + fleet.fleet_entries_at_start)  # once per container per epoch met
    # Each container fetches each day of keys it meets once (the two keys may straddle midnight)
    # and keeps them as long as their entries live: no container goes back to KMS ...
    assert 5 <= fleet.fleet_queries <= 5 * 2 and fleet.fleet_gets <= 5
    assert fleet.key_table_gets == fleet.decrypt_calls  # a key nobody filed: key table, then KMS
    # ... while containers alone ask the key table and KMS whenever their cache ages out.
    assert alone.decrypt_calls >= 5 * 6000 // config.DEFAULT_READER_KEY_CACHE_SECONDS - 5
    assert alone.key_table_gets == alone.decrypt_calls
    assert alone.mac_calls == alone.fleet_gets == alone.fleet_queries == 0


def test_given_a_seed_when_the_fleet_design_is_simulated_twice_then_the_counts_are_identical() -> None:
    scenario = replace(TINY, tenants=50, writers=3, readers=3, write_rate=3, read_rate=3)

    def counts(sc: Scenario) -> dict[str, Any]:
        return {k: v for k, v in asdict(pool_run(sc, writer_key_cache_seconds=120)).items() if k != "seconds"}

    first = counts(scenario)
    assert first == counts(scenario)
    assert first != counts(replace(scenario, seed=8))
    assert first["fleet_entries_at_start"] > 0 and first["history_reads"] > 0


def test_given_pool_keys_with_churn_when_simulated_then_encrypts_per_write_match_the_closed_form() -> None:
    scenario = replace(
        TINY,
        tenants=50,
        writers=3,
        readers=1,
        write_rate=3,
        read_rate=0.1,
        churn_mean_s=300,
        warmup_s=600,
        measure_s=3600,
    )
    design = PoolDesign(Production(writer_key_cache_seconds=60))
    measured = statistics.mean(
        Simulation(replace(scenario, seed=seed), design).run().write_calls_per_record for seed in range(3)
    )
    assert measured == pytest.approx(design.expected_write_calls(scenario), rel=0.15)


@pytest.mark.parametrize("locality", ["uniform", "recent"])
def test_given_the_pool_history_and_fleet_warm_up_when_compared_with_a_live_fleet_then_costs_agree(
    locality: str,
) -> None:
    """Short key age and fleet lifetime so that a small scenario has many keys and renewals.

    Live: reads start only once history_s of records exist (never reaching before 0) and run
    history_s before measuring, so every key they can meet was born while reads were running:
    the fleet table is in its steady state without any modelling. An empty table at 0 instead
    of the warm-up gives about half the Decrypts here (entries all stored in the read warm-up).
    """
    bounds = {"writer_key_cache_seconds": 120, "fleet_key_lifetime_seconds": 1200, "reader_key_cache_seconds": 60}
    history = 3600
    base = replace(
        TINY,
        tenants=20,
        writers=3,
        readers=3,
        write_rate=2,
        read_rate=1,
        history_s=history,
        locality=locality,
        churn_mean_s=900,
        measure_s=600,
    )
    shortcut = replace(base, warmup_s=600, read_warmup_s=300)
    live = replace(base, warmup_s=2 * history + 300, read_warmup_s=history + 300)

    def bounded(scenario: Scenario) -> Result:
        return pool_run(scenario, PoolFleetDesign, **bounds)

    def mean(scenario: Scenario) -> tuple[float, float, float]:
        runs = [bounded(replace(scenario, seed=seed)) for seed in range(6)]
        return (
            statistics.mean(r.per_read(r.decrypt_calls) for r in runs),
            statistics.mean(r.per_read(r.fleet_gets) for r in runs),
            statistics.mean(r.write_calls_per_record for r in runs),
        )

    assert bounded(shortcut).history_reads > 0 and bounded(live).history_reads == 0
    (decrypts, gets, writes), (live_decrypts, live_gets, live_writes) = mean(shortcut), mean(live)
    assert decrypts == pytest.approx(live_decrypts, rel=0.15)
    assert gets == pytest.approx(live_gets, rel=0.05)
    assert writes == pytest.approx(live_writes, rel=0.15)


def test_given_the_masked_view_then_the_model_counts_its_writer_keys_and_only_those() -> None:
    """Issue 14's model includes the masked view's data keys (issue 13): one more Encrypt per period, no Decrypt."""

    class WithoutMaskedView(PoolDesign):
        masked_view = False

    scenario = replace(STILL, tenants=50, history_s=0, read_rate=0.01, warmup_s=0, measure_s=3 * 3600 + 100)
    with_view, without = pool_run(scenario, PoolDesign), pool_run(scenario, WithoutMaskedView)
    assert with_view.encrypt_calls == 2 * without.encrypt_calls == 8
    assert with_view.decrypt_calls == without.decrypt_calls
    assert with_view.write_calls_per_record < 0.01
