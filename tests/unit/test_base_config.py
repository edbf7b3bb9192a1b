"""`load_base_config`, `split_fit_arguments`, paths and `domain_samples`: reading a config, never judging it.

What a config may contain is the LightningCLI parser's call (`test_lightning_cli_config.py`); here only
the YAML's shape and the plumbing around it.
"""

import copy

import numpy as np
import pytest
from ray import tune

from lightning_bohb.core.base_config import (
    domain_samples,
    format_path,
    load_base_config,
    parse_path,
    split_fit_arguments,
)
from lightning_bohb.core.lightning_cli import BaseConfigError
from lightning_bohb.exceptions import ConfigError

MODEL = "digits_model.DigitsClassifier"


def test_loads_the_example_yaml_as_written(example_yaml):
    for source in (example_yaml, str(example_yaml)):
        config = load_base_config(source)
        assert config["model"] == {
            "class_path": MODEL,
            "init_args": {"hidden_size": 64, "num_layers": 2, "dropout": 0.1, "lr": 0.001},
        }
        assert config["data"]["init_args"] == {"batch_size": 64}
        assert config["trainer"]["max_epochs"] == 10
        assert config["seed_everything"] == 42


def test_dict_input_is_copied_not_normalised(base_dict):
    source = {"model": {"class_path": MODEL}, "optimizer": None, "ckpt_path": None}
    before = copy.deepcopy(source)
    assert load_base_config(source) == before  # kept as written: the parser fills in the rest
    config = load_base_config(base_dict)
    config["model"]["init_args"]["lr"] = 1.0
    assert base_dict["model"]["init_args"]["lr"] == 0.001


def test_fit_section_of_a_main_parser_config_is_used(base_dict):
    assert load_base_config({"fit": base_dict}) == base_dict
    assert load_base_config({"fit": base_dict, "subcommand": "fit"}) == base_dict
    with pytest.raises(BaseConfigError, match=r"subcommand sections \['validate'\] but no `fit:` mapping"):
        load_base_config({"validate": base_dict})


def _error(source) -> str:
    with pytest.raises(BaseConfigError) as info:
        load_base_config(source)
    return str(info.value)


def test_missing_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    message = _error(missing)
    assert "not found" in message and str(missing) in message


def test_yaml_syntax_error_is_one_line(write_yaml):
    path = write_yaml("model: {class_path: [unclosed\n")
    message = _error(path)
    assert "is not valid YAML" in message and str(path) in message and "\n" not in message


@pytest.mark.parametrize("text", ["- model\n- data\n", "just a string\n", ""])
def test_non_mapping_yaml(write_yaml, text):
    assert "must be a mapping with `model:`" in _error(write_yaml(text))


def test_fit_arguments_are_split_off():
    config = {"model": {"class_path": MODEL}, "ckpt_path": None, "weights_only": None}
    assert split_fit_arguments(config) == ({"model": {"class_path": MODEL}}, {})
    config["ckpt_path"] = "last.ckpt"
    assert split_fit_arguments(config)[1] == {"ckpt_path": "last.ckpt"}


@pytest.mark.parametrize(
    "path, tokens",
    [
        ("lr", ["lr"]),
        ("model.init_args.encoder.init_args.hidden", ["model", "init_args", "encoder", "init_args", "hidden"]),
        ("trainer.callbacks[1].init_args.patience", ["trainer", "callbacks", 1, "init_args", "patience"]),
        ("a[0][2].b", ["a", 0, 2, "b"]),
    ],
)
def test_paths_round_trip(path, tokens):
    assert parse_path(path) == tokens
    assert format_path(tokens) == path


def test_a_number_between_dots_is_a_list_index():
    assert parse_path("trainer.callbacks.0.init_args") == ["trainer", "callbacks", 0, "init_args"]


@pytest.mark.parametrize("path", ["a..b", "a.[0]", "a[x].b", "a]"])
def test_malformed_paths(path):
    with pytest.raises(ConfigError, match="is not a config path"):
        parse_path(path)


def test_domain_samples():
    assert domain_samples(tune.choice([np.int64(16), 32])) == [16, 32]
    assert type(domain_samples(tune.choice([np.int64(16)]))[0]) is int
    assert domain_samples({"grid_search": [1, 2, 3]}) == [1, 2, 3]
    (value,) = domain_samples(tune.loguniform(1e-4, 1e-1))
    assert 1e-4 <= value <= 1e-1 and domain_samples(tune.loguniform(1e-4, 1e-1)) == [value]  # seeded, not the global RNG
    assert domain_samples(tune.sample_from(lambda spec: spec.config.lr * 2)) == []  # needs the rest of the config
    assert domain_samples(0.5) == [0.5] and domain_samples({"class_path": "x.Y"}) == [{"class_path": "x.Y"}]
    assert len(domain_samples(tune.choice(list(range(100))))) == 20
