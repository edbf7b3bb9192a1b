"""Any config ``python main.py fit --config c.yaml`` accepts, the optimizer accepts; everything else fails
before Ray starts with the YAML path and the LightningCLI parser's reason, on one line."""

import logging
import sys

import pytest
import yaml
from lightning.pytorch.cli import LightningCLI
from ray import tune

from lbohb_cli_helpers import LinkedCLI, NotesCLI, TinyData, TinyModel
from lightning_bohb.core.lightning_cli import BaseConfigError
from lightning_bohb.core.optimization_config import OptimizationConfig
from lightning_bohb.core.optimizer import ConfigDrivenOptimizer
from lightning_bohb.core.search_space import SearchSpace
from lightning_bohb.exceptions import ConfigError

H = "lbohb_cli_helpers"


class Space(SearchSpace):
    def __init__(self, **space):
        self.space = space or {"lr": tune.loguniform(1e-3, 1e-1)}

    def get_search_space(self):
        return self.space

    def get_metric_config(self):
        return {"metric": "val_loss", "mode": "min"}


def issue_config():
    """A project as LightningCLI users write it: optimizer/lr_scheduler keys, short names, an injected encoder."""
    return {
        "seed_everything": True,
        "trainer": {
            "max_epochs": 5,
            "callbacks": [
                {"class_path": "EarlyStopping", "init_args": {"monitor": "val_loss", "patience": 3}},
                {"class_path": "LearningRateMonitor"},
            ],
            "logger": [
                {"class_path": "CSVLogger", "init_args": {"save_dir": "logs"}},
                {"class_path": "TensorBoardLogger", "init_args": {"save_dir": "logs"}},
            ],
        },
        "model": {"class_path": f"{H}.TinyModel", "init_args": {"encoder": {"class_path": f"{H}.Encoder", "init_args": {"hidden": 8}}}},
        "data": {"class_path": f"{H}.TinyData", "init_args": {"batch_size": 8}},
        "optimizer": {"class_path": "SGD", "init_args": {"lr": 0.05}},
        "lr_scheduler": {"class_path": "StepLR", "init_args": {"step_size": 1, "gamma": 0.5}},
    }


def optimizer(config, space=None, seed=None, **kwargs):
    return ConfigDrivenOptimizer(config, space or Space(), optimization_config=OptimizationConfig(max_epochs=2, seed=seed), **kwargs)


def error(config, space=None, **kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        optimizer(config, space, **kwargs)
    message = str(info.value)
    assert "\n" not in message  # printed as one `error:` line
    return message


def test_a_usual_lightning_cli_project_searched_through_any_path(monkeypatch):
    space = Space(
        **{
            "optimizer.init_args.lr": tune.loguniform(1e-3, 1e-1),
            "lr_scheduler.init_args.gamma": tune.uniform(0.5, 0.9),
            "model.init_args.encoder.init_args.hidden": tune.choice([4, 8]),
            "model.init_args.encoder.class_path": tune.choice([f"{H}.Encoder", f"{H}.WideEncoder"]),
            "trainer.callbacks[0].init_args.patience": tune.randint(1, 5),
            "batch_size": tune.choice([4, 8]),
        }
    )
    found = optimizer(issue_config(), space)
    assert found.parameter_paths["batch_size"] == "data.init_args.batch_size"
    complete = found.complete_config({"optimizer.init_args.lr": 0.01, "model.init_args.encoder.class_path": f"{H}.WideEncoder"})
    assert complete["optimizer"] == {
        "class_path": "torch.optim.SGD",
        "init_args": {**complete["optimizer"]["init_args"], "lr": 0.01},
    }
    assert complete["model"]["init_args"]["encoder"] == {"class_path": f"{H}.WideEncoder", "init_args": {"hidden": 8}}
    assert complete["trainer"]["callbacks"][0]["class_path"] == "lightning.pytorch.callbacks.EarlyStopping"
    assert complete["seed_everything"] == 0 and complete["trainer"]["max_epochs"] == 2
    monkeypatch.setattr(sys, "argv", ["main.py"])
    again = LightningCLI(run=False, args=complete, parser_kwargs={"exit_on_error": False}, save_config_callback=None)
    assert type(again.model.encoder).__name__ == "WideEncoder"  # LightningCLI itself accepts best_config.yaml


def test_print_config_output_is_accepted_unchanged(tmp_path, capsys, monkeypatch, example_yaml):
    monkeypatch.setattr(sys, "argv", ["main.py"])
    with pytest.raises(SystemExit):
        LightningCLI(args=["fit", "--config", str(example_yaml), "--print_config"])
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["optimizer"] is None and printed["ckpt_path"] is None and "enable_checkpointing" in printed["trainer"]
    found = optimizer(printed, Space(lr=tune.loguniform(1e-3, 1e-1), hidden_size=tune.choice([16, 32])))
    assert found.fit_arguments == {} and "ckpt_path" not in found.trial_spec().base_config
    assert found.seed is None and found.trial_spec().merged_config({})["seed_everything"] == 42  # the config's own seed


def test_a_fit_section_and_a_checkpoint_to_start_from(base_dict):
    found = optimizer({"fit": {**base_dict, "ckpt_path": "start.ckpt"}})
    assert found.fit_arguments == {"ckpt_path": "start.ckpt"}
    assert found.trial_spec().fit_arguments == {"ckpt_path": "start.ckpt"}
    assert found.complete_config({"lr": 0.01})["ckpt_path"] == "start.ckpt"


def test_a_fixed_class_cli():
    config = {"model": {"hidden": 8}, "data": {"batch_size": 4}}
    found = optimizer(
        config, Space(hidden=tune.choice([4, 8]), lr=tune.uniform(0.01, 0.1)), model_class=TinyModel, datamodule_class=TinyData
    )
    assert found.parameter_paths == {"hidden": "model.hidden", "lr": "model.lr"}
    assert found.complete_config({"hidden": 4})["model"] == {"hidden": 4, "lr": 0.1, "encoder": None}
    assert found.user_classes() == [TinyModel, TinyData]
    assert found.cli_arguments == {"model_class": TinyModel, "datamodule_class": TinyData}
    assert "is refused by LightningCLI" in error(config)  # without the project's CLI arguments


def test_a_projects_own_cli_subclass():
    config = {**issue_config(), "notes": "baseline"}
    assert "Option 'notes' is not accepted" in error(config, Space(**{"optimizer.init_args.lr": tune.uniform(0.01, 0.1)}))
    found = optimizer(config, Space(notes=tune.choice(["a", "b"])), cli_class=NotesCLI)
    assert found.parameter_paths == {"notes": "notes"} and found.cli_arguments == {"cli_class": NotesCLI}


def test_a_projects_own_cli_with_linked_arguments():
    config = issue_config()
    found = optimizer(config, Space(batch_size=tune.choice([4, 6])), cli_class=LinkedCLI)
    assert found.parameter_paths == {"batch_size": "data.init_args.batch_size"}
    trial_config = found.trial_spec().merged_config({"batch_size": 6})
    cli = found.trial_spec().cli.build(trial_config, [], {"logger": False, "enable_progress_bar": False})
    assert cli.datamodule.batch_size == 6 and cli.model.encoder.out_features == 8  # the YAML's encoder wins over `hidden`
    assert cli.model.hparams.hidden == 6  # the linked target follows the sampled value
    assert "hidden" not in found.complete_config({"batch_size": 6})["model"]["init_args"]  # LightningCLI refuses a linked target


@pytest.mark.parametrize(
    "environment, seed, expected",
    [({}, None, 0), ({"PL_GLOBAL_SEED": "11"}, None, 11), ({"PL_GLOBAL_SEED": "11"}, 4, 4)],
)
def test_seed_everything_true_means_what_it_means_to_lightning_cli(monkeypatch, environment, seed, expected):
    monkeypatch.delenv("PL_GLOBAL_SEED", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    found = optimizer(issue_config(), Space(**{"optimizer.init_args.lr": tune.uniform(0.01, 0.1)}), seed=seed)
    assert found.seed == expected and found.trial_spec().seed == expected
    assert found.complete_config({})["seed_everything"] == expected  # recorded in best_config.yaml


def test_seed_everything_false_stays_unseeded_unless_the_search_has_a_seed():
    config = {**issue_config(), "seed_everything": False}
    space = Space(**{"optimizer.init_args.lr": tune.uniform(0.01, 0.1)})
    assert optimizer(config, space).seed is None
    assert optimizer(config, space).trial_spec().merged_config({})["seed_everything"] is False
    assert optimizer(config, space, seed=3).seed == 3


@pytest.mark.parametrize(
    "space, expected",
    [
        (
            {"model.init_args.encoder.init_args.hidden": tune.uniform(1, 2)},
            "Search-space name 'model.init_args.encoder.init_args.hidden' sets `model.init_args.encoder.init_args.hidden` to 1.5488",
        ),
        (
            {"model.init_args.encoder.init_args.hidden": tune.uniform(1, 2)},
            "model.init_args.encoder.init_args.hidden: Expected a <class 'int'>",
        ),
        ({"model.init_args.encoder.init_args.hidden": tune.choice([4, "big"])}, "to 'big' (from choice([4, 'big']))"),
        ({"lr_scheduler.init_args.gamma": tune.choice(["fast"])}, "lr_scheduler.init_args.gamma: Expected a <class 'float'>"),
        (
            {"trainer.callbacks[0].init_args.patience": tune.choice([3, "x"])},
            "refuses: trainer.callbacks.init_args.patience: Expected a <class 'int'>. Got value: x",
        ),
        ({"batch_size": tune.choice([8, 2.5])}, "data.init_args.batch_size: Expected a <class 'int'>"),
    ],
)
def test_a_sampled_value_of_the_wrong_type_fails_before_ray(space, expected):
    import ray

    message = error(issue_config(), Space(**space))
    assert expected in message and "which the LightningCLI parser refuses" in message
    assert not ray.is_initialized()


def test_a_class_choice_whose_class_refuses_the_yamls_init_args():
    config = issue_config()
    config["model"]["init_args"]["encoder"]["init_args"]["depth"] = 2  # WideEncoder takes no depth
    space = Space(**{"model.init_args.encoder.class_path": tune.choice([f"{H}.Encoder", f"{H}.WideEncoder"])})
    message = error(config, space)
    assert f"to '{H}.WideEncoder'" in message and "depth" in message


def test_the_base_config_is_judged_by_the_parser_with_its_yaml_path():
    config = issue_config()
    config["trainer"]["max_epoch"] = 3
    assert "Group 'trainer' does not accept option 'max_epoch'" in error(config)
    config = issue_config()
    config["model"]["init_args"]["encoder"]["init_args"]["hidden"] = "wide"
    message = error(config)
    assert isinstance(pytest.raises(BaseConfigError, optimizer, config).value, BaseConfigError)
    assert "model.init_args.encoder.init_args.hidden: Expected a <class 'int'>" in message
    assert "the following arguments are required: model" in error({"trainer": {"max_epochs": 1}})


def test_the_yaml_it_was_given_is_kept_as_written(write_yaml):
    path = write_yaml(issue_config())
    found = optimizer(path, Space(**{"optimizer.init_args.lr": tune.uniform(0.01, 0.1)}))
    assert found.base_config == issue_config() and found.base_config_source == str(path)


def test_a_model_written_against_standalone_pytorch_lightning_names_the_namespace_to_use():
    pytest.importorskip("pytorch_lightning")
    config = {"model": {"class_path": "lbohb_standalone_helpers.StandaloneModel"}}
    message = error(config)
    assert "the standalone `pytorch_lightning` package" in message and "import lightning.pytorch as pl" in message
    from lbohb_standalone_helpers import StandaloneModel

    assert "`model_class` is lbohb_standalone_helpers.StandaloneModel" in error({"model": {}}, model_class=StandaloneModel)


def test_a_model_importing_pytorch_lightning_where_it_is_not_installed(tmp_path, monkeypatch):
    (tmp_path / "lbohb_needs_standalone.py").write_text(
        "import pytorch_lightning\n\nclass Model(pytorch_lightning.LightningModule):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(sys.modules, "pytorch_lightning", None)  # `import pytorch_lightning` fails as if not installed
    message = error({"model": {"class_path": "lbohb_needs_standalone.Model"}})
    assert "imports `pytorch_lightning`, which is not installed" in message and "import lightning.pytorch as pl" in message


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"cli_class": dict}, "The value of `cli_class` is <class 'dict'>, but must be `lightning.pytorch.cli.LightningCLI` or a subclass"),
        ({"args": ["fit"]}, "`args` is set by LightningTune in every trial"),
        ({"trainer_defaultz": {}}, "`trainer_defaultz` is not a LightningCLI argument"),
    ],
)
def test_lightning_cli_arguments_are_checked(base_dict, kwargs, expected):
    assert expected in error(base_dict, **kwargs)


def test_lightning_cli_arguments_reach_the_parser(base_dict):
    found = optimizer(base_dict, seed_everything_default=False, trainer_defaults={"gradient_clip_val": 0.5})
    del base_dict["seed_everything"]
    assert optimizer(base_dict, seed_everything_default=False).seed is None
    assert found.complete_config({})["trainer"]["gradient_clip_val"] == 0.5


def test_loader_workers_without_cpus_warn_once_with_the_fix(caplog):
    config = issue_config()
    config["data"]["init_args"]["num_workers"] = 2
    space = Space(**{"optimizer.init_args.lr": tune.uniform(0.01, 0.1)})
    with caplog.at_level(logging.WARNING, logger="lightning_bohb"):
        optimizer(config, space)
    (warning,) = [r.getMessage() for r in caplog.records if "num_workers" in r.getMessage()]
    assert "num_workers: 2" in warning and "OptimizationConfig(cpus_per_trial=3)" in warning
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="lightning_bohb"):
        ConfigDrivenOptimizer(config, space, optimization_config=OptimizationConfig(cpus_per_trial=3))
        config["data"]["init_args"]["persistent_workers"] = True
        ConfigDrivenOptimizer(config, space, optimization_config=OptimizationConfig(cpus_per_trial=3))
    warnings = [r.getMessage() for r in caplog.records if r.name.startswith("lightning_bohb.") or r.name == "lightning_bohb"
                if "worker" in r.getMessage()]
    assert warnings == []  # CPUs reserved; persistent workers resume exactly (FreshLoaderWorkers), nothing to say


def test_searched_worker_counts_count_too(caplog):
    with caplog.at_level(logging.WARNING, logger="lightning_bohb"):
        optimizer(issue_config(), Space(num_workers=tune.choice([0, 3])))
    assert any("cpus_per_trial=4" in r.getMessage() for r in caplog.records)
