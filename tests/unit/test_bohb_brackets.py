"""BOHB's HyperBand schedule and its model's observations, on a real Tune run of one HyperBand iteration.

One trial at a time, eta 3, max_t 27: the first iteration is the paper's four brackets (Li et al. 2018),
27 trials from 1 epoch, 12 from 3, 6 from 9 and 4 from 27, each rung keeping ``floor(n / 3**i)``. Ray's
own brackets took every trial after the first bracket at its last rung (27 epochs), and the rung results
HyperBand stopped a trial on never reached the model.
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
    for epoch in range(start + 1, MAX_T + 1):
        with tempfile.TemporaryDirectory() as folder:
            json.dump({"epoch": epoch}, open(os.path.join(folder, "epoch.json"), "w"))
            loss = (config["x"] - 0.3) ** 2 + config["y"] + 1.0 / epoch
            tune.report({"loss": loss}, checkpoint=Checkpoint.from_directory(folder))


@pytest.fixture(scope="module")
def one_iteration(tmp_path_factory):
    """Trials (in creation order) and the searcher of a one-iteration BOHB run at concurrency 1."""
    import ray
    from ray import cloudpickle, tune

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray's workers cannot import this test module
    expected = _paper_iteration(MAX_T, ETA)
    num_trials = sum(next(iter(bracket.values())) for bracket in expected)
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        searcher, scheduler = BOHBStrategy(reduction_factor=ETA).build(max_t=MAX_T, max_concurrent=1, seed=0)
        analysis = tune.run(
            _trainable,
            config={"x": tune.uniform(0, 1), "y": tune.uniform(0, 1)},
            num_samples=num_trials,
            search_alg=searcher,
            scheduler=scheduler,
            metric="loss",
            mode="min",
            storage_path=str(tmp_path_factory.mktemp("tune")),
            reuse_actors=True,
            verbose=0,
        )
    finally:
        ray.shutdown()
    trials = analysis.trials  # in creation order
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
