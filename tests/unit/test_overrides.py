"""Sampled values land at their paths, as plain Python, and `instantiate` builds the objects."""

import copy
import pickle

import numpy as np
import pytest
import yaml

from lightning_bohb.core.base_config import apply_overrides, load_base_config, resolve_parameter_paths
from lightning_bohb.core.trainable import TrialSpec, build_trainer_kwargs, instantiate
from lightning_bohb.utils.plain import to_plain

H = "lbohb_test_helpers"


@pytest.fixture
def config(base_dict):
    return load_base_config(base_dict)


@pytest.fixture
def spec(config):
    paths = resolve_parameter_paths(config, ["lr", "batch_size", "trainer.gradient_clip_val"])
    return TrialSpec(base_config=config, parameter_paths=paths, max_epochs=3, metric="val_loss", seed=7)


def test_apply_overrides_sets_paths_without_mutating_base(config):
    before = copy.deepcopy(config)
    paths = {"lr": "model.init_args.lr", "clip": "trainer.gradient_clip_val", "new": "trainer.plugins.x"}
    merged = apply_overrides(config, {"lr": 0.5, "clip": 1.0, "new": 2, "unmapped": 9}, paths)
    assert merged["model"]["init_args"]["lr"] == 0.5
    assert merged["trainer"]["gradient_clip_val"] == 1.0
    assert merged["trainer"]["plugins"] == {"x": 2}  # missing parents are created
    assert "unmapped" not in yaml.safe_dump(merged)
    assert config == before


def test_numpy_scalars_become_python_types(config):
    values = {"a": np.int64(32), "b": np.float32(0.5), "c": np.bool_(True), "e": [np.int32(1), {"f": np.float64(2.0)}]}
    merged = apply_overrides(config, values, {k: f"model.init_args.{k}" for k in values})
    args = merged["model"]["init_args"]
    assert type(args["a"]) is int and args["a"] == 32
    assert type(args["b"]) is float and args["b"] == 0.5
    assert type(args["c"]) is bool
    assert type(args["e"][0]) is int and type(args["e"][1]["f"]) is float
    assert type(to_plain((np.int64(1),))[0]) is int
    yaml.safe_dump(merged)


def test_numpy_strings_become_python_str():
    plain = to_plain({"activation": np.str_("relu")})
    assert type(plain["activation"]) is str
    yaml.safe_dump(plain)


def test_merged_config_applies_values_seed_and_max_epochs(spec, config):
    before = copy.deepcopy(config)
    merged = spec.merged_config({"lr": np.float64(0.01), "batch_size": np.int64(16), "trainer.gradient_clip_val": 0.5})
    assert merged["model"]["init_args"] == {"hidden_size": 64, "lr": 0.01}
    assert type(merged["data"]["init_args"]["batch_size"]) is int
    assert merged["trainer"] == {"accelerator": "cpu", "max_epochs": 3, "gradient_clip_val": 0.5}
    assert merged["seed_everything"] == 7
    assert spec.base_config == before
    # best_config.yaml must be plain YAML that round-trips.
    assert yaml.safe_load(yaml.safe_dump(merged, sort_keys=False)) == merged


def test_merged_config_without_seed_keeps_base_seed(spec):
    spec.seed = None
    assert spec.merged_config({})["seed_everything"] == 42
    spec.base_config = {k: v for k, v in spec.base_config.items() if k not in ("seed_everything", "trainer")}
    merged = spec.merged_config({})
    assert "seed_everything" not in merged and merged["trainer"] == {"max_epochs": 3}


def test_trial_spec_pickles(spec):
    assert pickle.loads(pickle.dumps(spec)) == spec


def test_merged_config_instantiates_the_example(spec):
    merged = spec.merged_config({"lr": np.float64(0.02), "batch_size": np.int64(8)})
    model, data = instantiate(merged["model"]), instantiate(merged["data"])
    assert type(model).__name__ == "DigitsClassifier" and model.lr == 0.02 and model.hparams.hidden_size == 64
    assert type(data).__name__ == "DigitsDataModule" and data.batch_size == 8


def test_instantiate_nested_class_paths_and_lists():
    node = {
        "class_path": f"{H}.Wrapper",
        "init_args": {
            "inner": {"class_path": f"{H}.Point", "init_args": {"x": 1}},
            "items": [{"class_path": f"{H}.Point"}, 3, {"plain": {"class_path": f"{H}.Point", "init_args": {"y": 2}}}],
        },
    }
    obj = instantiate(node)
    assert type(obj).__name__ == "Wrapper"
    assert type(obj.inner).__name__ == "Point" and (obj.inner.x, obj.inner.y) == (1, 0)
    first, number, plain = obj.items
    assert type(first).__name__ == "Point" and number == 3
    assert set(plain) == {"plain"} and plain["plain"].y == 2
    assert instantiate({"a": [1, "b"], "c": None}) == {"a": [1, "b"], "c": None}


def test_instantiate_trainer_callbacks():
    from lightning.pytorch.callbacks import EarlyStopping

    trainer = {
        "max_epochs": 2,
        "callbacks": [{"class_path": "lightning.pytorch.callbacks.EarlyStopping", "init_args": {"monitor": "val_loss", "patience": 2}}],
    }
    built = instantiate(trainer)
    (stopper,) = built["callbacks"]
    assert isinstance(stopper, EarlyStopping) and stopper.monitor == "val_loss" and stopper.patience == 2
    assert built["max_epochs"] == 2 and trainer["callbacks"][0]["class_path"]  # input left as is


def test_build_trainer_kwargs_quiet_defaults_and_callback_order():
    ours = object()
    kwargs = build_trainer_kwargs({"logger": True, "callbacks": {"class_path": f"{H}.Point"}}, [ours])
    assert kwargs["logger"] is True  # the YAML wins over the quiet defaults
    assert kwargs["enable_progress_bar"] is False
    assert kwargs["enable_checkpointing"] is True  # forced: the report callback is a Checkpoint
    user, last = kwargs["callbacks"]
    assert type(user).__name__ == "Point" and last is ours
