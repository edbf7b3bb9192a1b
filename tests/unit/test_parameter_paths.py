"""`resolve_parameter_paths`: every search-space name sets one place the LightningCLI parser knows."""

import pytest
from lightning.pytorch.cli import LightningCLI

from lightning_bohb.core.base_config import resolve_parameter_paths
from lightning_bohb.core.lightning_cli import CLISpec
from lightning_bohb.exceptions import ConfigError

H = "lbohb_cli_helpers"
FULL = {
    "trainer": {
        "callbacks": [
            {"class_path": "EarlyStopping", "init_args": {"monitor": "val_loss"}},
            {"class_path": "LearningRateMonitor"},
        ]
    },
    "model": {"class_path": f"{H}.TinyModel", "init_args": {"encoder": {"class_path": f"{H}.Encoder", "init_args": {"hidden": 8}}}},
    "data": {"class_path": f"{H}.TinyData"},
    "optimizer": {"class_path": "SGD", "init_args": {"lr": 0.1}},
    "lr_scheduler": {"class_path": "StepLR", "init_args": {"step_size": 1}},
}


def parsed(config, **cli):
    return CLISpec(**cli).parse(config)[1]


@pytest.fixture(scope="module")
def full():
    return parsed(FULL)


def _error(namespace, names) -> str:
    with pytest.raises(ConfigError) as info:
        resolve_parameter_paths(namespace, names)
    return str(info.value)


def test_bare_names_are_init_arguments_of_model_or_data(base_dict):
    namespace = parsed(base_dict)
    assert resolve_parameter_paths(namespace, ["lr", "num_layers", "batch_size", "val_fraction", "seed_everything"]) == {
        "lr": "model.init_args.lr",
        "num_layers": "model.init_args.num_layers",  # an init arg the YAML leaves at its default
        "batch_size": "data.init_args.batch_size",
        "val_fraction": "data.init_args.val_fraction",
        "seed_everything": "seed_everything",  # a top-level key
    }


def test_any_path_the_parser_knows(full):
    names = [
        "optimizer.init_args.lr",
        "optimizer.init_args.momentum",  # a default of SGD the YAML does not write
        "lr_scheduler.init_args.gamma",
        "model.init_args.encoder.init_args.hidden",
        "model.init_args.encoder.init_args.depth",
        "model.init_args.encoder.class_path",  # a choice between classes
        "model.init_args.encoder",  # or whole {class_path, init_args} mappings
        "trainer.callbacks[0].init_args.patience",
        "trainer.callbacks[1].init_args.logging_interval",
        "trainer.gradient_clip_val",
    ]
    assert resolve_parameter_paths(full, names) == {name: name for name in names}
    assert resolve_parameter_paths(full, ["trainer.callbacks.0.init_args.patience"]) == {
        "trainer.callbacks.0.init_args.patience": "trainer.callbacks[0].init_args.patience"
    }


@pytest.mark.parametrize(
    "name, reason",
    [
        ("model.init_args.encoder.init_args.hiden", "`model.init_args.encoder.init_args` has no key 'hiden'; it has ['depth', 'hidden']"),
        ("optimizer.init_args.learning_rate", "`optimizer.init_args` has no key 'learning_rate'"),
        ("trainer.callbacks[2].init_args.patience", "`trainer.callbacks` has 2 entries, so [2] does not exist"),
        ("trainer.callbacks.init_args", "`trainer.callbacks` is a list; address its entries as `trainer.callbacks[i]`"),
        ("trainer.gradient_clip", "`trainer` has no key 'gradient_clip'"),
        ("trainer.accumulate_grad_batches.x", "`trainer.accumulate_grad_batches` is the value 1, which has no keys"),
        ("trainer.max_epochs.x", "`trainer.max_epochs` is null in the config"),
        ("model.lr", "`model` has no key 'lr'; it has ['class_path', 'init_args']"),
    ],
)
def test_paths_the_parser_does_not_know(full, name, reason):
    message = _error(full, [name])
    assert f"Search-space name {name!r} is not a path the LightningCLI parser knows" in message and reason in message


def test_a_null_section_names_the_fix(base_dict):
    message = _error(parsed(base_dict), ["optimizer.init_args.lr"])
    assert "`optimizer` is null in the config; give it a value in the YAML" in message


def test_unknown_bare_name_lists_candidates(base_dict):
    message = _error(parsed(base_dict), ["learning_rate"])
    assert "'learning_rate' matches no init argument" in message
    assert "'model.init_args.lr'" in message and "'data.init_args.batch_size'" in message


def test_ambiguous_bare_name(base_dict):
    base_dict["data"] = {"class_path": f"{H}.LrData"}
    namespace = parsed(base_dict)
    message = _error(namespace, ["lr"])
    assert "'lr' is ambiguous" in message and "['model.init_args.lr', 'data.init_args.lr']" in message
    assert resolve_parameter_paths(namespace, ["data.init_args.lr"]) == {"data.init_args.lr": "data.init_args.lr"}


def test_fixed_class_cli_puts_init_arguments_directly_under_model():
    from lbohb_cli_helpers import TinyData, TinyModel

    namespace = parsed({"model": {"hidden": 8}, "trainer": {"max_epochs": 1}}, model_class=TinyModel, datamodule_class=TinyData)
    assert resolve_parameter_paths(namespace, ["hidden", "batch_size", "model.lr"]) == {
        "hidden": "model.hidden",
        "batch_size": "data.batch_size",
        "model.lr": "model.lr",
    }


def test_model_only_config(base_dict):
    del base_dict["data"]
    namespace = parsed(base_dict)
    assert resolve_parameter_paths(namespace, ["lr"]) == {"lr": "model.init_args.lr"}
    assert "'batch_size' matches no init argument" in _error(namespace, ["batch_size"])


def test_a_projects_own_cli_arguments_are_paths_too():
    from lbohb_cli_helpers import NotesCLI

    namespace = parsed({"model": {"class_path": f"{H}.TinyModel"}, "notes": "x"}, cli_class=NotesCLI)
    assert resolve_parameter_paths(namespace, ["notes"]) == {"notes": "notes"}
    assert LightningCLI is not NotesCLI
