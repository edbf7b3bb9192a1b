"""A LightningCLI project as its users write it: searched, paused, resumed and rerun (issue 11).

The config uses LightningCLI's ``optimizer:``/``lr_scheduler:`` keys and short class names (SGD,
StepLR, EarlyStopping, LearningRateMonitor, CSVLogger, TensorBoardLogger); the model's encoder is
injected and searched through ``model.init_args.encoder.init_args.hidden``; the training loader has 2
worker processes, persistent as the DataModule's own code says (not the config), that add random noise
to every sample (so the workers' RNG matters). Two seeded sessions are equal; a session paused twice
equals the uninterrupted one, down to its CSV rows and TensorBoard scalars; ``best_config.yaml`` run
through the user's own LightningCLI script with the command ``export-best`` prints (the trial's thread
count) reproduces the best trial's per-epoch ``val_loss`` bitwise.
"""

import csv
import glob
import json
import shlex
import struct
import sys
from pathlib import Path

import pytest
import yaml
from ray import tune

from e2e_support import REPO, PauseAfter, ScriptRun
from lightning_bohb import ConfigDrivenOptimizer, OptimizationConfig, RandomStrategy, SearchSpace, SessionPaused, TuneReflowCLI
from lightning_bohb.cli.main import main

pytestmark = pytest.mark.usefixtures("local_ray")

CONFIG = {
    "seed_everything": 3,
    "trainer": {
        "accelerator": "cpu",
        "deterministic": True,
        "log_every_n_steps": 2,
        "callbacks": [
            {"class_path": "EarlyStopping", "init_args": {"monitor": "val_loss", "patience": 10}},
            {"class_path": "LearningRateMonitor"},
        ],
        "logger": [
            {"class_path": "CSVLogger", "init_args": {"save_dir": "logs"}},
            {"class_path": "TensorBoardLogger", "init_args": {"save_dir": "logs"}},
        ],
    },
    "model": {
        "class_path": "e2e_models.EncoderRegressor",
        "init_args": {"encoder": {"class_path": "e2e_models.MLPEncoder", "init_args": {"hidden": 8}}},
    },
    "data": {"class_path": "e2e_models.NoiseData", "init_args": {"num_workers": 2}},  # persistent in its code
    "optimizer": {"class_path": "SGD", "init_args": {"lr": 0.05}},
    "lr_scheduler": {"class_path": "StepLR", "init_args": {"step_size": 1, "gamma": 0.7}},
}


class Space(SearchSpace):
    def get_search_space(self):
        return {
            "optimizer.init_args.lr": tune.loguniform(1e-3, 1e-1),
            "lr_scheduler.init_args.gamma": tune.uniform(0.5, 0.9),
            "model.init_args.encoder.init_args.hidden": tune.choice([4, 8]),
        }

    def get_metric_config(self):
        return {"metric": "val_loss", "mode": "min"}


def _optimizer(folder: Path) -> ConfigDrivenOptimizer:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    config = OptimizationConfig(max_epochs=3, num_samples=2, max_concurrent_trials=1, seed=5)
    return ConfigDrivenOptimizer(path, Space(), RandomStrategy(seed=1), config)


def _tensorboard_scalars(folder: Path):
    """``[(tag, step, value)]`` of every scalar in a TensorBoard run folder, file after file."""
    from tensorboardX.proto.event_pb2 import Event

    scalars = []
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data, position = path.read_bytes(), 0
        while position < len(data):
            (length,) = struct.unpack("<Q", data[position : position + 8])
            event = Event.FromString(data[position + 12 : position + 12 + length])
            position += 12 + length + 4
            scalars += [(v.tag, event.step, v.simple_value) for v in event.summary.value if v.HasField("simple_value")]
    return scalars


def _trials(session: Path):
    """Per trial (keyed by its sampled config): per-epoch val_loss, its metrics.csv text, its TensorBoard scalars."""
    trials = {}
    for trial in (session / "tune").glob("train_trial_*"):
        rows = [json.loads(line) for line in (trial / "result.json").read_text().splitlines() if line.strip()]
        (metrics_csv,) = trial.glob("logs/lightning_logs/*/metrics.csv")
        (tensorboard,) = {path.parent for path in trial.glob("logs/lightning_logs/*/events.out.tfevents.*")}
        key = json.dumps(rows[0]["config"], sort_keys=True)
        trials[key] = {
            "val_loss": [(row["epoch"], row["val_loss"]) for row in rows],
            "csv": metrics_csv.read_text(),
            "tensorboard": _tensorboard_scalars(tensorboard),
        }
    return trials


@pytest.fixture(scope="module")
def reference(local_ray, tmp_path_factory):
    """The uninterrupted seeded session: ``(session folder, its trials)``."""
    folder = tmp_path_factory.mktemp("reference")
    cli = TuneReflowCLI("issue11", experiment_dir=folder, enable_pause=False, verbose=False)
    results = cli.run(_optimizer(folder))
    assert len(results) == 2 and not results.errors
    trials = _trials(cli.session_dir)
    assert len(trials) == 2 and all([e for e, _ in t["val_loss"]] == [0, 1, 2] for t in trials.values())
    return cli.session_dir, trials


def test_two_seeded_sessions_are_equal_and_keep_their_logs_in_the_session(reference, tmp_path):
    _, expected = reference
    cli = TuneReflowCLI("issue11", experiment_dir=tmp_path, enable_pause=False, verbose=False)
    cli.run(_optimizer(tmp_path))
    assert _trials(cli.session_dir) == expected
    for trial in expected.values():
        rows = list(csv.DictReader(trial["csv"].splitlines()))
        assert [r["epoch"] for r in rows if r["val_loss"]] == ["0", "1", "2"]  # one val row per epoch
        assert sum(1 for r in rows if r["train_loss_epoch"]) == 3  # one training-epoch row per epoch
        assert any(tag == "lr-SGD" for tag, _, _ in trial["tensorboard"])  # LearningRateMonitor, from the YAML


def test_paused_twice_equals_uninterrupted_logs_included(reference, tmp_path):
    _, expected = reference
    cli = PauseAfter("issue11", experiment_dir=tmp_path, enable_pause=False, verbose=False)
    cli.pause_at = 2  # mid-trial: after the first trial's second epoch
    with pytest.raises(SessionPaused):
        cli.run(_optimizer(tmp_path))
    again = PauseAfter.resume(cli.session_dir)
    again.pause_at = 2  # the first trial finishes, the second pauses after its first epoch
    with pytest.raises(SessionPaused):
        again.run()
    PauseAfter.resume(cli.session_dir).run()

    resumed = _trials(cli.session_dir)
    assert resumed == expected  # per-epoch val_loss, the CSV file byte for byte, every TensorBoard scalar
    for trial in resumed.values():
        steps = [(tag, step) for tag, step, _ in trial["tensorboard"] if tag != "epoch"]  # Lightning logs `epoch` with each row
        assert len(steps) == len(set(steps))  # no scalar logged twice at a step
    versions = list((cli.session_dir / "tune").glob("*/logs/lightning_logs/version_*"))
    assert len(versions) == 4  # 2 trials x (CSV, TensorBoard): a resumed trial never opened a new version


@pytest.mark.parametrize(
    "first, second",
    [
        pytest.param(3, 1, id="held-at-its-last-epoch-end"),  # or just finished: the second trial starts over
        pytest.param(4, 2, id="resumed-then-held-at-its-last-epoch-end"),
    ],
)
def test_held_at_a_last_epoch_end_the_logs_equal_uninterrupted(reference, tmp_path, first, second):
    """A trial held at a validated epoch end is ended, not closed: the rows logged before the hold
    (TensorBoard's queued ones included) and the pending training row are all there after the resume."""
    _, expected = reference
    cli = PauseAfter("issue11", experiment_dir=tmp_path, enable_pause=False, verbose=False)
    cli.pause_at = first  # after the first trial's last epoch (3), or the second trial's first (4)
    with pytest.raises(SessionPaused):
        cli.run(_optimizer(tmp_path))
    again = PauseAfter.resume(cli.session_dir)
    again.pause_at = second
    try:
        again.run()
    except SessionPaused:
        PauseAfter.resume(cli.session_dir).run()
    assert _trials(cli.session_dir) == expected


def test_best_config_through_the_users_lightning_cli_script_reproduces_the_best_trial(reference, tmp_path, capsys):
    session, trials = reference
    target = tmp_path / "best.yaml"
    assert main(["export-best", str(session), "-o", str(target)]) == 0
    (command,) = [line for line in capsys.readouterr().out.splitlines() if "fit --config" in line]
    *settings, python, script_name, fit, config, path = shlex.split(command.split(": ", 1)[1])
    assert settings == ["OMP_NUM_THREADS=1"]  # the trial's thread count: its CPU (cpus_per_trial=1)
    assert [python, script_name, fit, config, path] == ["python", "main.py", "fit", "--config", str(target)]
    assert "\n#   OMP_NUM_THREADS=1 python main.py fit --config best_config.yaml\n" in target.read_text()  # its header
    best = yaml.safe_load(target.read_text())
    assert best["seed_everything"] == 5 and best["trainer"]["max_epochs"] == 3
    assert best["optimizer"]["class_path"] == "torch.optim.SGD"  # complete, as LightningCLI saves configs
    # persistent workers (set in the DataModule's code) were restarted each epoch in the trials: the rerun does the same
    assert best["trainer"]["callbacks"][-1] == {"class_path": "lightning_bohb.callbacks.FreshLoaderWorkers"}
    sampled = {
        "optimizer.init_args.lr": best["optimizer"]["init_args"]["lr"],
        "lr_scheduler.init_args.gamma": best["lr_scheduler"]["init_args"]["gamma"],
        "model.init_args.encoder.init_args.hidden": best["model"]["init_args"]["encoder"]["init_args"]["hidden"],
    }
    expected = trials[json.dumps(sampled, sort_keys=True)]["val_loss"]

    script = REPO / "tests" / "e2e" / "lightning_cli_main.py"
    run = ScriptRun(["env", *settings, sys.executable, str(script), fit, config, path], cwd=tmp_path)
    assert run.wait(timeout=300) == 0, run.output[-3000:]
    (metrics_csv,) = glob.glob(str(tmp_path / "logs" / "lightning_logs" / "*" / "metrics.csv"))
    rows = [row for row in csv.DictReader(open(metrics_csv)) if row["val_loss"]]
    assert [(int(row["epoch"]), float(row["val_loss"])) for row in rows] == expected
