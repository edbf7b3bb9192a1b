"""`resolve_parameter_paths`: each search-space name sets exactly one place in the base config."""

import pytest

from lightning_bohb.core.base_config import load_base_config, resolve_parameter_paths
from lightning_bohb.exceptions import ConfigError


@pytest.fixture
def config(base_dict):
    return load_base_config(base_dict)


def _error(config, names) -> str:
    with pytest.raises(ConfigError) as info:
        resolve_parameter_paths(config, names)
    return str(info.value)


def test_bare_and_dotted_names(config):
    names = ["lr", "num_layers", "batch_size", "val_fraction", "trainer.gradient_clip_val", "model.init_args.dropout", "seed_everything.x"]
    assert resolve_parameter_paths(config, names) == {
        "lr": "model.init_args.lr",
        "num_layers": "model.init_args.num_layers",  # an init arg the YAML leaves at its default
        "batch_size": "data.init_args.batch_size",
        "val_fraction": "data.init_args.val_fraction",
        "trainer.gradient_clip_val": "trainer.gradient_clip_val",
        "model.init_args.dropout": "model.init_args.dropout",
        "seed_everything.x": "seed_everything.x",
    }


def test_unknown_bare_name_lists_candidates(config):
    message = _error(config, ["learning_rate"])
    assert "'learning_rate' matches no init argument" in message
    assert "'model.init_args.lr'" in message and "'data.init_args.batch_size'" in message


def test_ambiguous_bare_name(config):
    config = load_base_config({**config, "data": {"class_path": "lbohb_test_helpers.LrDataModule"}})
    message = _error(config, ["lr"])
    assert "'lr' is ambiguous" in message
    assert "['model.init_args.lr', 'data.init_args.lr']" in message
    # A dotted path settles it.
    assert resolve_parameter_paths(config, ["data.init_args.lr"]) == {"data.init_args.lr": "data.init_args.lr"}


def test_unknown_trainer_argument(config):
    assert "Trainer has no argument 'gradient_clip'" in _error(config, ["trainer.gradient_clip"])


def test_dotted_unknown_init_argument(config):
    message = _error(config, ["model.init_args.hiden_size"])
    assert "digits_model.DigitsClassifier has no init argument 'hiden_size'" in message
    assert "it accepts ['dropout', 'hidden_size', 'lr', 'num_layers']" in message


@pytest.mark.parametrize("name", ["optimizer.lr", "model.lr", "trainer.callbacks.0", "data.init_args.batch_size"])
def test_paths_the_config_does_not_have(config, name):
    del config["data"]  # so `data.init_args.*` has no owner
    assert "is not a path this config has" in _error(config, [name])


def test_model_only_config(config):
    del config["data"]
    assert resolve_parameter_paths(config, ["lr"]) == {"lr": "model.init_args.lr"}
    assert "'batch_size' matches no init argument" in _error(config, ["batch_size"])


def test_kwargs_model_accepts_any_dotted_init_arg():
    config = load_base_config({"model": {"class_path": "lbohb_test_helpers.KwargsModel", "init_args": {"a": 1}}})
    assert resolve_parameter_paths(config, ["model.init_args.b"]) == {"model.init_args.b": "model.init_args.b"}
