"""Many runs: seeds spawned from the scenario seed, identical tables on every executor."""

from __future__ import annotations

import pytest

import sim
from sim.experiments import runs as ex
from sim.experiments.executors import DaskCluster, ProcessPool, execute


@pytest.fixture(scope="module")
def small(baseline_path):
    return sim.load(baseline_path, {"population.users": 10000})


def test_replication_seeds_are_spawned_and_stable():
    seeds = ex.replication_seeds(7, 5)
    assert seeds == ex.replication_seeds(7, 5)
    assert len(set(seeds)) == 5 and seeds != ex.replication_seeds(8, 5)
    assert ex.replication_seeds(7, 3) == seeds[:3]  # adding replications keeps the first ones


def test_replications_differ_and_are_labelled(small):
    outputs = ex.replications(small, 3, quarters=1)
    metrics = ex.concat(outputs, "metrics")
    assert list(metrics.columns[:1]) == ["replication"]
    assert sorted(metrics.replication.unique()) == [0, 1, 2]
    # each replication draws its own population: who is eligible differs (invited counts
    # may coincide, as batch sizes are set in accounts)
    finals = metrics.groupby("replication").eligible.last()
    assert finals.nunique() == 3


def test_process_pool_and_dask_match_in_process(small):
    pytest.importorskip("dask.distributed")
    inproc = ex.concat(ex.replications(small, 3, quarters=1), "segments")
    pool = ProcessPool(2, chunk=2)  # chunks of 2 and 1 runs come back in run order
    try:
        pooled = ex.concat(ex.replications(small, 3, quarters=1, executor=pool), "segments")
        # the same workers serve the next call, in order, chunk by chunk
        assert execute(abs, list(range(-9, 0)), pool) == list(range(9, 0, -1))
    finally:
        pool.close()
    dask = DaskCluster(workers=2)
    try:
        clustered = ex.concat(ex.replications(small, 3, quarters=1, executor=dask), "segments")
    finally:
        dask.close()
    assert inproc.equals(pooled) and inproc.equals(clustered)


def test_shared_pool_is_one_per_worker_count_and_outlives_close():
    pool = ProcessPool.shared(1)
    assert ProcessPool.shared(1) is pool
    pool.close()  # a shared pool stays up for the next caller
    assert execute(abs, [-2, -1], pool) == [2, 1]
