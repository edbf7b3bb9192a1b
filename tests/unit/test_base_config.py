"""`load_base_config` and `import_class`: every malformed base config fails with a clear ConfigError."""

import copy
from pathlib import Path

import pytest

from lightning_bohb.core.base_config import load_base_config
from lightning_bohb.exceptions import ConfigError
from lightning_bohb.utils.imports import import_class

MODEL = "digits_model.DigitsClassifier"


def test_loads_the_example_yaml(example_yaml):
    for source in (example_yaml, str(example_yaml)):
        config = load_base_config(source)
        assert config["model"] == {
            "class_path": MODEL,
            "init_args": {"hidden_size": 64, "num_layers": 2, "dropout": 0.1, "lr": 0.001},
        }
        assert config["data"]["init_args"] == {"batch_size": 64}
        assert config["trainer"]["max_epochs"] == 10
        assert config["seed_everything"] == 42


def test_dict_input_is_copied_and_normalised(base_dict):
    source = {"model": {"class_path": MODEL}, "data": {"class_path": "digits_model.DigitsDataModule", "init_args": None}}
    before = copy.deepcopy(source)
    config = load_base_config(source)
    assert config["model"]["init_args"] == {} and config["data"]["init_args"] == {}
    assert config["trainer"] == {}
    assert source == before  # the caller's dict is not modified

    config = load_base_config(base_dict)
    config["model"]["init_args"]["lr"] = 1.0
    assert base_dict["model"]["init_args"]["lr"] == 0.001


def test_null_trainer_becomes_empty_mapping():
    assert load_base_config({"model": {"class_path": MODEL}, "trainer": None})["trainer"] == {}


def _error(source) -> str:
    with pytest.raises(ConfigError) as info:
        load_base_config(source)
    return str(info.value)


def test_missing_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    message = _error(missing)
    assert "not found" in message and str(missing) in message


def test_yaml_syntax_error(write_yaml):
    path = write_yaml("model: {class_path: [unclosed\n")
    message = _error(path)
    assert "is not valid YAML" in message and str(path) in message


@pytest.mark.parametrize("text", ["- model\n- data\n", "just a string\n", ""])
def test_non_mapping_yaml(write_yaml, text):
    assert "must be a mapping with `model:`" in _error(write_yaml(text))


def test_unknown_top_level_key(write_yaml):
    message = _error(write_yaml({"model": {"class_path": MODEL}, "optimizer": {"lr": 0.1}}))
    assert "unsupported top-level keys ['optimizer']" in message
    assert "'seed_everything', 'trainer', 'model', 'data', 'ckpt_path'" in message
    assert "configure_optimizers" in message


def test_missing_model(write_yaml):
    assert "has no `model:` section" in _error(write_yaml({"trainer": {"max_epochs": 1}}))


def test_null_model_is_rejected():
    _error({"model": None})


@pytest.mark.parametrize("section", ["model", "data"])
def test_section_without_class_path(section):
    config = {"model": {"class_path": MODEL}, section: {"init_args": {}}}
    assert f"`{section}:` in the base config dict must have `class_path`" in _error(config)


def test_class_path_module_does_not_import():
    message = _error({"model": {"class_path": "no_such_pkg_xyz.models.Model"}})
    assert "`model.class_path` is 'no_such_pkg_xyz.models.Model'" in message
    assert "module 'no_such_pkg_xyz.models' does not import" in message
    assert "No module named 'no_such_pkg_xyz'" in message


def test_class_path_attribute_missing():
    message = _error({"model": {"class_path": MODEL}, "data": {"class_path": "digits_model.NoSuchData"}})
    assert "`data.class_path` is 'digits_model.NoSuchData'" in message
    assert "'digits_model' has no attribute 'NoSuchData'" in message


def test_class_path_without_module():
    assert "use the full import path" in _error({"model": {"class_path": "DigitsClassifier"}})


def test_init_args_not_accepted_lists_accepted_names(write_yaml):
    path = write_yaml({"model": {"class_path": MODEL, "init_args": {"hiden_size": 8, "lr": 0.1}}})
    message = _error(path)
    assert "`model.init_args` has ['hiden_size'], which digits_model.DigitsClassifier does not accept" in message
    assert "it accepts ['dropout', 'hidden_size', 'lr', 'num_layers']" in message


def test_data_init_args_not_accepted():
    message = _error(
        {"model": {"class_path": MODEL}, "data": {"class_path": "digits_model.DigitsDataModule", "init_args": {"lr": 1}}}
    )
    assert "`data.init_args` has ['lr']" in message and "'batch_size'" in message


def test_kwargs_class_accepts_any_init_args():
    config = load_base_config({"model": {"class_path": "lbohb_test_helpers.KwargsModel", "init_args": {"anything": 1}}})
    assert config["model"]["init_args"] == {"anything": 1}


def test_trainer_must_be_mapping():
    assert "`trainer:` in the base config dict must be a mapping" in _error({"model": {"class_path": MODEL}, "trainer": [1]})


def test_import_class_returns_the_class():
    from digits_model import DigitsClassifier

    assert import_class(MODEL) is DigitsClassifier
    assert import_class("pathlib.Path") is Path
