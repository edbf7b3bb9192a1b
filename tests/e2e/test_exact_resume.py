"""Every strategy, paused twice and resumed, runs exactly the search it runs without pauses.

Same trials (configs, in order), same per-epoch metrics, same early-stopping decisions (epochs per
trial) and the same best config as the uninterrupted session; scheduler state is restored too.
"""

import os
import sys

import pytest
import ray
from ray import tune

from conftest import REPO

from lightning_bohb import (
    ASHAStrategy,
    BOHBStrategy,
    ConfigDrivenOptimizer,
    HyperOptStrategy,
    OptimizationConfig,
    OptunaStrategy,
    RandomStrategy,
    SearchSpace,
    SessionPaused,
    TuneReflowCLI,
)


class Space(SearchSpace):
    def get_search_space(self):
        return {"lr": tune.loguniform(1e-3, 5e-2), "hidden_size": tune.choice([16, 32, 64])}

    def get_metric_config(self):
        return {"metric": "val_loss", "mode": "min"}


class PauseAfter(TuneReflowCLI):
    """Pauses itself when this run has seen ``pause_at`` results (an arbitrary moment)."""

    pause_at = None

    def should_auto_pause(self, metrics):
        self.seen = getattr(self, "seen", 0) + 1
        return self.seen == self.pause_at


STRATEGIES = {
    "bohb": lambda: BOHBStrategy(reduction_factor=2, seed=5),
    "asha": lambda: ASHAStrategy(grace_period=1, reduction_factor=2, seed=5),
    "optuna": lambda: OptunaStrategy(n_startup_trials=2, seed=5),
    "hyperopt": lambda: HyperOptStrategy(n_initial_points=2, seed=5),
    "random": lambda: RandomStrategy(seed=5),
}


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    sys.path.insert(0, str(REPO / "examples"))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _optimizer(name, max_concurrent=1):
    config = OptimizationConfig(max_epochs=4, num_samples=5, max_concurrent_trials=max_concurrent, seed=11)
    return ConfigDrivenOptimizer(REPO / "examples" / "config.yaml", Space(), STRATEGIES[name](), config)


def _creation_index(result):
    """Trial folders are named ``train_trial_<trial id>_<creation index>_<params>_<date>``."""
    name = os.path.basename(result.path)
    return int(name[len(f"train_trial_{result.metrics['trial_id']}_") :].split("_")[0])


def _trace(results):
    return [
        (r.config, list(r.metrics_dataframe["epoch"]), list(r.metrics_dataframe["val_loss"]))
        for r in sorted(results, key=_creation_index)
    ]


def _paused_and_resumed(tmp_path, name, pauses, max_concurrent=1):
    cli = PauseAfter(name, experiment_dir=tmp_path, enable_pause=False, verbose=False)
    cli.pause_at = pauses[0]
    with pytest.raises(SessionPaused):
        cli.run(_optimizer(name, max_concurrent))
    for pause_at in pauses[1:]:
        again = PauseAfter.resume(cli.session_dir)
        again.pause_at = pause_at
        with pytest.raises(SessionPaused):
            again.run()
    return cli.session_dir, PauseAfter.resume(cli.session_dir).run()


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_paused_twice_equals_uninterrupted(tmp_path, name):
    reference = TuneReflowCLI(name, experiment_dir=tmp_path / "ref", enable_pause=False, verbose=False).run(_optimizer(name))
    session, resumed = _paused_and_resumed(tmp_path / "paused", name, pauses=(3, 4))

    assert _trace(resumed) == _trace(reference)
    best = lambda results: results.get_best_result("val_loss", "min").config  # noqa: E731
    assert best(resumed) == best(reference)
    assert "pause_count: 2" in (session / "session_state.summary.yaml").read_text()


@pytest.mark.parametrize("name", ["bohb", "asha"])
def test_concurrent_bohb_and_asha_resume_without_deadlock_or_retraining(tmp_path, name):
    _, results = _paused_and_resumed(tmp_path, name, pauses=(4,), max_concurrent=2)
    assert len(results) == 5 and not results.errors
    for result in results:
        epochs = list(result.metrics_dataframe["epoch"])
        assert epochs == list(range(len(epochs)))  # no epoch trained twice
