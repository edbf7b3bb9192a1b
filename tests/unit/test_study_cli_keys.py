"""A study YAML names the project's LightningCLI arguments as `ConfigDrivenOptimizer` takes them."""

import pytest

from lightning_bohb.cli.study import StudyError, parse_study

H = "lbohb_cli_helpers"


def study(tmp_path, base_config, **extra):
    data = {"base_config": base_config, "search_space": {"hidden": {"choice": [4, 8]}}, "metric": {"metric": "val_loss"}, **extra}
    return parse_study(data, tmp_path / "study.yaml")


def test_a_fixed_class_cli_and_its_own_subclass(tmp_path):
    found = study(
        tmp_path,
        {"model": {"hidden": 8}, "notes": "x"},
        cli_class=f"{H}.NotesCLI",
        model_class=f"{H}.TinyModel",
        datamodule_class=f"{H}.TinyData",
        subclass_mode_data=False,
    )
    assert found.cli == {
        "cli_class": f"{H}.NotesCLI",
        "model_class": f"{H}.TinyModel",
        "datamodule_class": f"{H}.TinyData",
        "subclass_mode_data": False,
    }
    optimizer = found.build_optimizer(experiment_dir=str(tmp_path))
    from lbohb_cli_helpers import NotesCLI, TinyData, TinyModel

    assert optimizer.cli_arguments == {"cli_class": NotesCLI, "model_class": TinyModel, "datamodule_class": TinyData}
    assert optimizer.parameter_paths == {"hidden": "model.hidden"}


@pytest.mark.parametrize(
    "key, value, problem",
    [
        ("cli_class", 3, "cli_class: must be the import path of a class"),
        ("model_class", "TinyModel", "model_class: must be the import path of a class"),
        ("subclass_mode_model", "yes", "subclass_mode_model: must be true or false"),
    ],
)
def test_wrong_types_are_named_by_key(tmp_path, key, value, problem):
    with pytest.raises(StudyError, match=problem):
        study(tmp_path, {"model": {"class_path": f"{H}.TinyModel"}}, **{key: value})


def test_a_class_that_does_not_import_or_is_not_a_cli(tmp_path):
    found = study(tmp_path, {"model": {"hidden": 8}}, model_class=f"{H}.NoSuchModel")
    with pytest.raises(StudyError, match=f"model_class: `model_class` is '{H}.NoSuchModel'"):
        found.build_optimizer(experiment_dir=str(tmp_path))
    found = study(tmp_path, {"model": {"class_path": f"{H}.TinyModel"}}, cli_class=f"{H}.TinyData")
    with pytest.raises(StudyError, match="The value of `cli_class` is <class 'lbohb_cli_helpers.TinyData'>"):
        found.build_optimizer(experiment_dir=str(tmp_path))


def test_a_base_config_the_parser_refuses_is_reported_under_base_config(tmp_path):
    found = study(tmp_path, {"model": {"class_path": f"{H}.TinyModel"}, "trainer": {"max_epoch": 3}})
    with pytest.raises(StudyError, match="base_config: the base config dict is refused by LightningCLI: .*max_epoch"):
        found.build_optimizer(experiment_dir=str(tmp_path))
