"""Sampled values land at their paths as plain Python, and each trial's LightningCLI builds from the result."""

import copy
import pickle

import numpy as np
import pytest
import yaml

from lightning_bohb.core.base_config import apply_overrides
from lightning_bohb.core.lightning_cli import CLISpec
from lightning_bohb.core.trainable import QUIET_TRAINER_DEFAULTS, TrialSpec, _restore_environment, seed_environment
from lightning_bohb.utils.plain import to_plain

H = "lbohb_cli_helpers"


@pytest.fixture
def spec(base_dict):
    paths = {
        "lr": "model.init_args.lr",
        "batch_size": "data.init_args.batch_size",
        "trainer.gradient_clip_val": "trainer.gradient_clip_val",
    }
    return TrialSpec(base_config=base_dict, parameter_paths=paths, max_epochs=3, metric="val_loss", seed=7)


def test_apply_overrides_sets_paths_without_mutating_base(base_dict):
    base_dict["trainer"]["callbacks"] = [{"class_path": "EarlyStopping", "init_args": {"monitor": "val_loss"}}]
    before = copy.deepcopy(base_dict)
    paths = {
        "lr": "model.init_args.lr",
        "clip": "trainer.gradient_clip_val",
        "patience": "trainer.callbacks[0].init_args.patience",
        "new": "optimizer.init_args.lr",
    }
    merged = apply_overrides(base_dict, {"lr": 0.5, "clip": 1.0, "patience": 4, "new": 0.1, "unmapped": 9}, paths)
    assert merged["model"]["init_args"]["lr"] == 0.5
    assert merged["trainer"]["gradient_clip_val"] == 1.0
    assert merged["trainer"]["callbacks"][0]["init_args"] == {"monitor": "val_loss", "patience": 4}
    assert merged["optimizer"] == {"init_args": {"lr": 0.1}}  # missing parents are created
    assert "unmapped" not in yaml.safe_dump(merged)
    assert base_dict == before


def test_overrides_into_classes_named_by_text_and_single_callbacks():
    config = {
        "model": {"class_path": f"{H}.TinyModel", "init_args": {"encoder": f"{H}.Encoder"}},
        "trainer": {"callbacks": {"class_path": "X"}},
    }
    paths = {"h": "model.init_args.encoder.init_args.hidden", "p": "trainer.callbacks[0].init_args.patience"}
    merged = apply_overrides(config, {"h": 16, "p": 2}, paths)
    assert merged["model"]["init_args"]["encoder"] == {"class_path": f"{H}.Encoder", "init_args": {"hidden": 16}}
    assert merged["trainer"]["callbacks"] == {"class_path": "X", "init_args": {"patience": 2}}


def test_numpy_scalars_become_python_types(base_dict):
    values = {
        "a": np.int64(32),
        "b": np.float32(0.5),
        "c": np.bool_(True),
        "e": [np.int32(1), {"f": np.float64(2.0)}],
        "s": np.str_("relu"),
    }
    merged = apply_overrides(base_dict, values, {k: f"model.init_args.{k}" for k in values})
    args = merged["model"]["init_args"]
    assert type(args["a"]) is int and args["a"] == 32
    assert type(args["b"]) is float and args["b"] == 0.5
    assert type(args["c"]) is bool and type(args["s"]) is str
    assert type(args["e"][0]) is int and type(args["e"][1]["f"]) is float
    assert type(to_plain((np.int64(1),))[0]) is int
    yaml.safe_dump(merged)


def test_merged_config_applies_values_seed_and_max_epochs(spec, base_dict):
    before = copy.deepcopy(base_dict)
    merged = spec.merged_config({"lr": np.float64(0.01), "batch_size": np.int64(16), "trainer.gradient_clip_val": 0.5})
    assert merged["model"]["init_args"] == {"hidden_size": 64, "lr": 0.01}
    assert type(merged["data"]["init_args"]["batch_size"]) is int
    assert merged["trainer"] == {"accelerator": "cpu", "max_epochs": 3, "gradient_clip_val": 0.5}
    assert merged["seed_everything"] == 7
    assert spec.base_config == before
    assert yaml.safe_load(yaml.safe_dump(merged, sort_keys=False)) == merged


def test_merged_config_without_seed_keeps_the_configs(spec):
    spec.seed = None
    assert spec.merged_config({})["seed_everything"] == 42
    spec.base_config = {k: v for k, v in spec.base_config.items() if k not in ("seed_everything", "trainer")}
    merged = spec.merged_config({})
    assert "seed_everything" not in merged and merged["trainer"] == {"max_epochs": 3}


def test_trial_config_runs_in_the_trial_folder_with_checkpointing_on(spec):
    spec.base_config["trainer"]["enable_checkpointing"] = False
    trainer = spec.trial_config({}, "/session/tune/trial_0")["trainer"]
    assert trainer["default_root_dir"] == "/session/tune/trial_0" and trainer["enable_checkpointing"] is True
    assert trainer["max_epochs"] == 3


def test_trial_spec_pickles(spec):
    spec.cli = CLISpec(model_class=None, kwargs={"seed_everything_default": 3})
    assert pickle.loads(pickle.dumps(spec)) == spec


def test_the_trial_cli_builds_model_data_and_trainer_with_our_callbacks(spec, tmp_path):
    from lightning.pytorch.callbacks import Callback, EarlyStopping

    ours = Callback()
    config = spec.trial_config({"lr": 0.02, "batch_size": 8}, str(tmp_path))
    config["trainer"]["callbacks"] = [{"class_path": "EarlyStopping", "init_args": {"monitor": "val_loss"}}]
    cli = CLISpec().build(config, [ours], QUIET_TRAINER_DEFAULTS)
    assert type(cli.model).__name__ == "DigitsClassifier" and cli.model.lr == 0.02 and cli.model.hparams.hidden_size == 64
    assert type(cli.datamodule).__name__ == "DigitsDataModule" and cli.datamodule.batch_size == 8
    callbacks = cli.trainer.callbacks
    assert isinstance(callbacks[0], EarlyStopping) and ours in callbacks  # the YAML's first, ours after
    assert callbacks.index(ours) > 0
    assert cli.trainer.logger is None and not cli.trainer.progress_bar_callback  # quiet where the YAML is silent
    assert cli.trainer.max_epochs == 3 and cli.trainer.default_root_dir == str(tmp_path)
    assert cli.config["seed_everything"] == 7


def test_a_logger_in_the_yaml_wins_over_the_quiet_default(spec, tmp_path):
    config = spec.trial_config({}, str(tmp_path))
    config["trainer"]["logger"] = {"class_path": "CSVLogger", "init_args": {"save_dir": "logs"}}
    cli = CLISpec().build(config, [], QUIET_TRAINER_DEFAULTS)
    assert type(cli.trainer.logger).__name__ == "CSVLogger"
    config["trainer"]["logger"] = True  # LightningCLI's default logger
    assert CLISpec().build(config, [], QUIET_TRAINER_DEFAULTS).trainer.logger is not None


def test_each_trial_starts_with_the_drivers_seed_environment(monkeypatch):
    monkeypatch.setenv("PL_GLOBAL_SEED", "5")
    monkeypatch.delenv("PL_SEED_WORKERS", raising=False)
    driver = seed_environment()
    monkeypatch.setenv("PL_GLOBAL_SEED", "99")  # what a previous trial in a reused worker left
    monkeypatch.setenv("PL_SEED_WORKERS", "1")
    _restore_environment(driver)
    import os

    assert os.environ["PL_GLOBAL_SEED"] == "5" and "PL_SEED_WORKERS" not in os.environ
