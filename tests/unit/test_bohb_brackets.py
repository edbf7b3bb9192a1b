"""BOHB on real Tune runs of a trivial trainable: HyperBand's schedule, the model's observations, reproducibility.

One trial at a time, eta 3, max_t 27: the first iteration is the paper's four brackets (Li et al. 2018),
27 trials from 1 epoch, 12 from 3, 6 from 9 and 4 from 27, each rung keeping ``floor(n / 3**i)``. Ray's
own brackets took every trial after the first bracket at its last rung (27 epochs), and the rung results
HyperBand stopped a trial on never reached the model. Two seeded searches of 60 trials propose the same
configurations although numpy's global generator differs between them (hpbandster draws from it).
"""

import json
import math
import os
import sys
import tempfile

import pytest

from lightning_bohb.core.strategies import BOHBStrategy

MAX_T, ETA = 27, 3


def _paper_iteration(max_t, eta):
    """HyperBand's first iteration: per bracket, the number of trials at each rung's budget."""
    s_max = round(math.log(max_t, eta))
    brackets = []
    for s in range(s_max, -1, -1):
        n = math.ceil((s_max + 1) / (s + 1) * eta**s)
        brackets.append({max_t // eta ** (s - i): max(1, n // eta**i) for i in range(s + 1)})
    return brackets


def _trainable(config):
    """Loss falls with the epochs and is lowest near x = 0.3; a checkpoint every epoch, for HyperBand's pauses."""
    from ray import tune
    from ray.tune import Checkpoint

    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as folder:
            start = json.load(open(os.path.join(folder, "epoch.json")))["epoch"]
    for epoch in range(start + 1, config["max_t"] + 1):
        with tempfile.TemporaryDirectory() as folder:
            json.dump({"epoch": epoch}, open(os.path.join(folder, "epoch.json"), "w"))
            loss = (config["x"] - 0.3) ** 2 + config["y"] + 1.0 / epoch
            tune.report({"loss": loss}, checkpoint=Checkpoint.from_directory(folder))


def _search(storage, num_trials, max_t, seed=0):
    """The trials (in creation order) and the searcher of a BOHB run at concurrency 1."""
    from ray import tune

    searcher, scheduler = BOHBStrategy(reduction_factor=ETA).build(max_t=max_t, max_concurrent=1, seed=seed)
    analysis = tune.run(
        _trainable,
        config={"x": tune.uniform(0, 1), "y": tune.uniform(0, 1), "max_t": max_t},
        num_samples=num_trials,
        search_alg=searcher,
        scheduler=scheduler,
        metric="loss",
        mode="min",
        storage_path=str(storage),
        reuse_actors=True,
        verbose=0,
    )
    return analysis.trials, searcher


@pytest.fixture(scope="module")
def local_ray():
    import ray
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray's workers cannot import this test module
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def one_iteration(local_ray, tmp_path_factory):
    """The paper's first iteration, and the trials and searcher of a run of exactly that many trials."""
    expected = _paper_iteration(MAX_T, ETA)
    trials, searcher = _search(tmp_path_factory.mktemp("tune"), sum(next(iter(b.values())) for b in expected), MAX_T)
    return expected, trials, searcher


def test_first_iteration_follows_hyperband_schedule(one_iteration):
    expected, trials, _ = one_iteration
    assert [t.status for t in trials] == ["TERMINATED"] * len(trials)
    epochs = [t.last_result["training_iteration"] for t in trials]
    start = 0
    for bracket in expected:
        size = next(iter(bracket.values()))
        reached = epochs[start : start + size]
        assert {budget: sum(e >= budget for e in reached) for budget in bracket} == bracket, (start, reached)
        assert set(reached) <= set(bracket)  # every trial stops at a rung
        start += size


def test_every_rung_result_reaches_the_model_once(one_iteration):
    expected, trials, searcher = one_iteration
    per_budget = {}
    for bracket in expected:
        for budget, count in bracket.items():
            per_budget[float(budget)] = per_budget.get(float(budget), 0) + count
    assert searcher.observation_counts() == per_budget
    # No budget above the largest: the model at max_t keeps every result given to it.
    assert len(searcher.bohber.losses[float(MAX_T)]) == per_budget[float(MAX_T)]


def test_seeded_search_proposes_the_same_configs(local_ray, tmp_path):
    import numpy as np

    runs = []
    for outside_seed in (1, 2):  # what else in the process drew from numpy must not matter
        np.random.seed(outside_seed)
        trials, searcher = _search(tmp_path / str(outside_seed), num_trials=60, max_t=9, seed=3)
        runs.append(([t.config for t in trials], [t.last_result["training_iteration"] for t in trials]))
        assert searcher.bohber.kde_models  # the model proposed (2 of 3 proposals) once it had 6 results at a budget
    assert len(runs[0][0]) == 60 and runs[0] == runs[1]
