"""Workload model (bench/workload.py): KMS call counting on tiny scenarios through the production caches."""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, replace

import pytest

from bench.workload import History, Production, Scenario, Simulation, TodayDesign, _zipf_cumulative, tenant_name

TINY = Scenario(
    "tiny", tenants=5, writers=2, readers=2, write_rate=2, read_rate=2, history_s=1800, locality="uniform",
    churn_mean_s=600, warmup_s=300, read_warmup_s=300, measure_s=300, seed=7,
)
CACHES_OFF = {"writer_key_cache_seconds": 0, "reader_key_cache_seconds": 0}


def run(scenario: Scenario, **bounds: int):
    return Simulation(scenario, TodayDesign(Production(**bounds))).run()


@pytest.mark.parametrize("locality", ["uniform", "recent"])
def test_given_caches_off_when_simulated_then_every_write_costs_one_encrypt_and_every_read_one_decrypt(locality) -> None:
    result = run(replace(TINY, locality=locality), **CACHES_OFF)
    assert result.writes > 0 and result.reads > 0
    assert result.encrypt_calls == result.writes
    assert result.decrypt_calls == result.reads
    if locality == "uniform":
        assert result.history_reads > 0  # the history shortcut was exercised


def test_given_one_tenant_one_container_when_keys_are_bounded_by_records_then_one_encrypt_per_max_records() -> None:
    scenario = replace(TINY, tenants=1, writers=1, readers=1, write_rate=10, churn_mean_s=None, arrivals="fixed",
                       warmup_s=0, measure_s=97)
    result = run(scenario, writer_key_cache_max_records=10)
    assert result.writes == 970
    assert result.encrypt_calls == math.ceil(970 / 10)


def test_given_one_tenant_one_container_when_keys_are_bounded_by_time_then_one_encrypt_per_max_age() -> None:
    scenario = replace(TINY, tenants=1, writers=1, readers=1, write_rate=1, churn_mean_s=None, arrivals="fixed",
                       warmup_s=0, measure_s=100)
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


def test_given_a_history_stream_when_records_are_looked_up_then_keys_follow_the_writer_cache_and_survive_eviction() -> None:
    scenario = replace(TINY, tenants=1, writers=1, write_rate=10, churn_mean_s=None, history_s=600)
    design = TodayDesign(Production(writer_key_cache_max_records=10))
    history = History(scenario, design, _zipf_cumulative(1), [tenant_name(0)])
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
