"""A real MLFlowLogger (local file store) through a search paused twice and resumed (issue 11 item 5).

The YAML configures ``MLFlowLogger`` with ``tracking_uri: file:./mlruns``, relative to the trial's
working directory (its folder in the session). Each trial has exactly one MLflow run, the same run id
before and after the resumes, and its ``val_loss`` and ``train_loss_epoch`` histories hold each epoch
once, equal to those of the uninterrupted session.

MLflow >= 3.x refuses its file store unless ``MLFLOW_ALLOW_FILE_STORE=true``: it is set before this
module's Ray starts, so the trials' workers inherit it.
"""

import copy
import json
import os
from pathlib import Path

import pytest
import ray
import yaml

from e2e_support import PauseAfter
from lightning_bohb import ConfigDrivenOptimizer, OptimizationConfig, RandomStrategy, SessionPaused, TuneReflowCLI
from test_lightning_cli import CONFIG as CLI_CONFIG
from test_lightning_cli import Space

mlflow = pytest.importorskip("mlflow")

pytestmark = pytest.mark.usefixtures("local_ray")

CONFIG = copy.deepcopy(CLI_CONFIG)
CONFIG["trainer"]["callbacks"] = CONFIG["trainer"]["callbacks"][:1]  # EarlyStopping only
CONFIG["trainer"]["logger"] = {
    "class_path": "MLFlowLogger",
    "init_args": {"experiment_name": "issue11", "tracking_uri": "file:./mlruns"},
}
CONFIG["data"]["init_args"] = {"num_workers": 0}  # loader workers are another test's subject: keep this one short


@pytest.fixture(scope="module")
def local_ray():
    """This module's local Ray, started with the file store allowed (its workers inherit the variable)."""
    previous = os.environ.get("MLFLOW_ALLOW_FILE_STORE")
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
    if previous is None:
        os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)
    else:
        os.environ["MLFLOW_ALLOW_FILE_STORE"] = previous


def _optimizer(folder: Path) -> ConfigDrivenOptimizer:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    config = OptimizationConfig(max_epochs=3, num_samples=2, max_concurrent_trials=1, seed=5)
    return ConfigDrivenOptimizer(path, Space(), RandomStrategy(seed=1), config)


def _history(client, run_id: str, key: str):
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def _mlflow_trials(session: Path):
    """Per trial (keyed by its sampled config): its MLflow run ids, and the val_loss/train_loss_epoch histories of its run."""
    trials = {}
    for trial in (session / "tune").glob("train_trial_*"):
        rows = [json.loads(line) for line in (trial / "result.json").read_text().splitlines() if line.strip()]
        assert (trial / "mlruns").is_dir(), sorted(p.name for p in trial.iterdir())
        client = mlflow.tracking.MlflowClient(tracking_uri=(trial / "mlruns").as_uri())
        experiment = client.get_experiment_by_name("issue11")
        runs = client.search_runs([experiment.experiment_id])
        run_id = runs[0].info.run_id
        trials[json.dumps(rows[0]["config"], sort_keys=True)] = {
            "run_ids": [run.info.run_id for run in runs],
            "val_loss": _history(client, run_id, "val_loss"),
            "train_loss_epoch": _history(client, run_id, "train_loss_epoch"),
            "result_val_loss": [row["val_loss"] for row in rows],
        }
    return trials


@pytest.fixture(scope="module")
def reference(local_ray, tmp_path_factory):
    """The uninterrupted seeded session's MLflow runs."""
    folder = tmp_path_factory.mktemp("mlflow_reference")
    cli = TuneReflowCLI("issue11", experiment_dir=folder, enable_pause=False, verbose=False)
    results = cli.run(_optimizer(folder))
    assert len(results) == 2 and not results.errors
    trials = _mlflow_trials(cli.session_dir)
    assert len(trials) == 2
    for trial in trials.values():
        assert len(trial["run_ids"]) == 1
        assert [value for _, value in trial["val_loss"]] == pytest.approx(trial["result_val_loss"])
        assert len(trial["val_loss"]) == len(trial["train_loss_epoch"]) == 3
    return trials


def test_paused_twice_each_trial_keeps_one_mlflow_run_with_each_epoch_once(reference, tmp_path):
    cli = PauseAfter("issue11", experiment_dir=tmp_path, enable_pause=False, verbose=False)
    cli.pause_at = 2  # mid-trial: after the first trial's second epoch
    with pytest.raises(SessionPaused):
        cli.run(_optimizer(tmp_path))
    before = {key: trial["run_ids"] for key, trial in _mlflow_trials(cli.session_dir).items()}
    assert len(before) == 1 and all(len(ids) == 1 for ids in before.values())

    again = PauseAfter.resume(cli.session_dir)
    again.pause_at = 2  # the first trial finishes, the second pauses after its first epoch
    with pytest.raises(SessionPaused):
        again.run()
    middle = {key: trial["run_ids"] for key, trial in _mlflow_trials(cli.session_dir).items()}
    assert len(middle) == 2 and all(len(ids) == 1 for ids in middle.values())
    PauseAfter.resume(cli.session_dir).run()

    resumed = _mlflow_trials(cli.session_dir)
    assert {key: trial["run_ids"] for key, trial in resumed.items() if key in middle} == middle  # the same run, resumed
    for key, trial in resumed.items():
        assert len(trial["run_ids"]) == 1  # never a second run beside it
        assert [step for step, _ in trial["val_loss"]] == [step for step, _ in reference[key]["val_loss"]]  # each epoch once
        assert trial["val_loss"] == reference[key]["val_loss"]
        assert trial["train_loss_epoch"] == reference[key]["train_loss_epoch"]  # the pending row too, once
