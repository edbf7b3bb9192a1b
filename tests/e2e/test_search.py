"""Tiny searches on one shared local Ray: every strategy end to end, reproducibility, bad metric."""

import sys

import pytest
import yaml

from e2e_support import REPO, STRATEGIES, LrSpace
from lightning_bohb import BOHBStrategy, ConfigDrivenOptimizer, OptimizationConfig, RandomStrategy

pytestmark = pytest.mark.usefixtures("local_ray")
CONFIG = REPO / "examples" / "config.yaml"


def _optimizer(tmp_path, strategy, space=None, **overrides):
    config = dict(max_epochs=3, num_samples=3, max_concurrent_trials=2, seed=7, experiment_dir=str(tmp_path), experiment_name="t")
    config.update(overrides)
    return ConfigDrivenOptimizer(CONFIG, space or LrSpace(hidden_sizes=(16, 32)), strategy, OptimizationConfig(**config))


def _histories(results):
    return [
        (result.config, list(result.metrics_dataframe["epoch"]), list(result.metrics_dataframe["val_loss"]))
        for result in results  # in creation order
    ]


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_runs_a_search_to_completion(tmp_path, name):
    optimizer = _optimizer(tmp_path, STRATEGIES[name]())
    results = optimizer.run(verbose=0)
    assert len(results) == 3 and not results.errors
    for result in results:
        epochs = list(result.metrics_dataframe["epoch"])
        assert epochs == list(range(len(epochs))) and 1 <= len(epochs) <= 3  # no epoch twice
        assert result.metrics["val_loss"] > 0
        assert set(result.config) == {"lr", "hidden_size"}
    best = yaml.safe_load((tmp_path / "t" / "best_config.yaml").read_text())
    best_result = min(results, key=lambda result: result.metrics_dataframe["val_loss"].min())  # best at any epoch
    assert best["model"]["init_args"]["lr"] == best_result.config["lr"]
    assert best["trainer"]["max_epochs"] == 3 and best["seed_everything"] == 7


def test_seeded_runs_are_reproducible_and_best_config_loads_in_lightning_cli(tmp_path, monkeypatch):
    first = _optimizer(tmp_path / "a", BOHBStrategy(), max_concurrent_trials=1).run(verbose=0)
    second = _optimizer(tmp_path / "b", BOHBStrategy(), max_concurrent_trials=1).run(verbose=0)
    assert _histories(first) == _histories(second)
    assert len({str(c) for c, _, _ in _histories(first)}) == 3  # three distinct sampled configs

    from lightning.pytorch.cli import LightningCLI

    monkeypatch.setattr(sys, "argv", ["fit"])  # LightningCLI reads sys.argv too; pytest's flags are not for it
    cli = LightningCLI(run=False, args=["--config", str(tmp_path / "a" / "t" / "best_config.yaml")], save_config_callback=None)
    assert type(cli.model).__name__ == "DigitsClassifier" and cli.trainer.max_epochs == 3


def test_metric_never_logged_fails_the_trial_listing_logged_metrics(tmp_path):
    results = _optimizer(tmp_path, RandomStrategy(), LrSpace(hidden_sizes=(16, 32), metric="val_f1"), num_samples=1).run(verbose=0)
    assert len(results.errors) == 1
    message = str(results.errors[0])
    assert "val_f1" in message and "val_loss" in message and "val_acc" in message
