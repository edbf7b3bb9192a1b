"""Study files for ``lightning-bohb run``: every invalid entry is reported by its YAML path, exit code 2."""

import pickle

import pytest
import yaml

from lightning_bohb.cli.main import main
from lightning_bohb.cli.study import StudyError, YamlSearchSpace, load_study, parse_study
from lightning_bohb.core.search_space import SearchSpace

VALID = {
    "base_config": "config.yaml",
    "search_space": {
        "lr": {"loguniform": [1.0e-4, 1.0e-1]},
        "hidden_size": {"choice": [16, 32, 64]},
        "dropout": {"uniform": [0.0, 0.5]},
        "num_layers": 2,
    },
    "metric": {"metric": "val_loss", "mode": "min"},
    "strategy": {"name": "asha", "grace_period": 1, "reduction_factor": 2},
    "optimization": {"max_epochs": 3, "num_samples": 2, "max_concurrent_trials": 2, "seed": 0},
}


@pytest.fixture
def study_dir(tmp_path, base_dict):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(base_dict))
    return tmp_path


def write_study(folder, data, name="study.yaml"):
    path = folder / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def with_entry(section, key, value):
    data = yaml.safe_load(yaml.safe_dump(VALID))
    if key is None:
        data[section] = value
    else:
        data[section][key] = value
    return data


def problems_of(study_dir, data):
    with pytest.raises(StudyError) as info:
        load_study(write_study(study_dir, data))
    return info.value.problems


def test_valid_study_parses_to_plain_data(study_dir):
    study = load_study(write_study(study_dir, VALID))
    assert study.base_config == str(study_dir / "config.yaml")  # relative to the study file
    assert study.space == {
        "lr": {"loguniform": [1.0e-4, 1.0e-1]},
        "hidden_size": {"choice": [16, 32, 64]},
        "dropout": {"uniform": [0.0, 0.5]},
        "num_layers": {"constant": 2},
    }
    assert study.metric == {"metric": "val_loss", "mode": "min"}
    assert study.strategy == {"name": "asha", "grace_period": 1, "reduction_factor": 2}
    assert study.folder == study_dir


def test_defaults_and_shorthands(study_dir, base_dict):
    data = {"base_config": base_dict, "search_space": {"lr": {"randint": [1, 4]}}, "metric": "val_acc"}
    study = load_study(write_study(study_dir, data, "my_study.yaml"))
    assert study.base_config == base_dict
    assert study.metric == {"metric": "val_acc", "mode": "min"}
    assert study.strategy == {"name": "random"}
    config = study.optimization_config()
    assert config.experiment_name == "my_study"
    assert study.optimization_config(experiment_dir="/x", experiment_name="n").experiment_dir == "/x"


@pytest.mark.parametrize(
    "section, key, value, expected",
    [
        ("search_space", "lr", {"logunform": [1e-4, 1e-1]}, "search_space.lr: unknown distribution 'logunform'; use one of ["),
        ("search_space", "lr", {"loguniform": [0.0, 1.0]}, "search_space.lr.loguniform: lower (0.0) must be > 0"),
        ("search_space", "lr", {"lograndint": [0, 8]}, "search_space.lr.lograndint: lower (0) must be > 0"),
        ("search_space", "lr", {"uniform": [1.0, 0.5]}, "search_space.lr.uniform: lower (1.0) must be less than upper"),
        ("search_space", "lr", {"uniform": [0.1]}, "search_space.lr.uniform: must be a list [lower, upper]"),
        ("search_space", "lr", {"quniform": [0.0, 1.0, 0]}, "search_space.lr.quniform: q (0) must be > 0"),
        ("search_space", "lr", {"randint": [1.5, 4]}, "search_space.lr.randint: lower must be an integer"),
        ("search_space", "lr", {"uniform": ["a", 1.0]}, "search_space.lr.uniform: lower must be a number"),
        ("search_space", "lr", {"loguniform": ["1e-4", 0.1]}, "write 1.0e-4"),
        ("search_space", "lr", {"choice": []}, "search_space.lr.choice: must be a non-empty list"),
        ("search_space", "lr", {"uniform": [0, 1], "choice": [1]}, "search_space.lr: a distribution is a mapping with one key"),
        ("search_space", None, [1, 2], "search_space: must be a non-empty mapping"),
        ("search_space", None, {}, "search_space: must be a non-empty mapping"),
        ("metric", "mode", "maximize", "metric.mode: must be 'min' or 'max', got 'maximize'"),
        ("metric", "metric", "", "metric.metric: must be the name of a metric"),
        ("metric", "goal", "min", "metric.goal: unknown key"),
        ("strategy", "name", "bohbb", "strategy.name: unknown strategy 'bohbb'; use one of ["),
        ("strategy", None, 3, "strategy: must be a name or a mapping"),
        ("optimization", "max_epoch", 3, "optimization.max_epoch: unknown field; use one of ["),
        ("optimization", None, [1], "optimization: must be a mapping"),
        ("base_config", None, "nowhere.yaml", "base_config: file not found"),
        ("base_config", None, 7, "base_config: must be a file path or a mapping"),
    ],
)
def test_invalid_entry_names_its_yaml_path(study_dir, section, key, value, expected):
    problems = problems_of(study_dir, with_entry(section, key, value))
    assert len(problems) == 1, problems
    assert expected in problems[0]


def test_unknown_and_missing_top_level_keys(study_dir):
    data = {"search_space": VALID["search_space"], "metrics": "val_loss"}
    problems = problems_of(study_dir, data)
    assert any(p.startswith("metrics: unknown key; use one of ['base_config'") for p in problems)
    assert any(p.startswith("base_config: missing") for p in problems)
    assert any(p.startswith("metric: missing") for p in problems)


def test_all_problems_are_reported_together(study_dir):
    data = with_entry("search_space", "lr", {"logunform": [1, 2]})
    data["optimization"]["max_epoch"] = 3
    with pytest.raises(StudyError) as info:
        load_study(write_study(study_dir, data))
    message = str(info.value)
    assert "has 2 problems" in message
    assert "\n  search_space.lr: unknown distribution" in message
    assert "\n  optimization.max_epoch: unknown field" in message


@pytest.mark.parametrize("text, expected", [("a: [1, 2", "not valid YAML"), ("- 1\n- 2\n", "must be a mapping")])
def test_not_yaml_or_not_a_mapping(study_dir, text, expected):
    with pytest.raises(StudyError, match=expected):
        load_study(write_study(study_dir, text))


def test_constants_including_mappings(study_dir):
    data = with_entry("search_space", "extra", {"constant": {"a": 1}})
    data["search_space"]["sizes"] = [1, 2]
    space = load_study(write_study(study_dir, data)).space
    assert space["extra"] == {"constant": {"a": 1}} and space["sizes"] == {"constant": [1, 2]}


def test_yaml_search_space_builds_ray_domains_and_pickles_by_reference():
    from ray import tune

    space = YamlSearchSpace(
        {"lr": {"loguniform": [1e-4, 1e-1]}, "h": {"choice": [16, 32]}, "n": {"qrandint": [1, 9, 2]}, "c": {"constant": 5}},
        {"metric": "val_loss", "mode": "max"},
    )
    assert isinstance(space, SearchSpace)
    domains = space.get_search_space()
    assert isinstance(domains["lr"], tune.search.sample.Float) and (domains["lr"].lower, domains["lr"].upper) == (1e-4, 1e-1)
    assert list(domains["h"].categories) == [16, 32]
    assert domains["c"] == 5
    assert space.validated_metric() == {"metric": "val_loss", "mode": "max"}

    import cloudpickle

    blob = cloudpickle.dumps(space)
    assert b"lightning_bohb.cli.study" in blob and b"YamlSearchSpace" in blob  # by reference, not by value
    restored = pickle.loads(blob)
    assert type(restored) is YamlSearchSpace and restored.space == space.space


def test_build_optimizer(study_dir):
    study = load_study(write_study(study_dir, VALID))
    optimizer = study.build_optimizer(experiment_dir=str(study_dir / "exp"))
    assert optimizer.parameter_paths["lr"] == "model.init_args.lr"
    assert optimizer.parameter_paths["num_layers"] == "model.init_args.num_layers"
    assert (optimizer.metric, optimizer.mode) == ("val_loss", "min")
    assert type(optimizer.strategy).__name__ == "ASHAStrategy" and optimizer.strategy.reduction_factor == 2
    assert optimizer.optimization_config.experiment_dir == str(study_dir / "exp")
    assert optimizer.optimization_config.experiment_name == "study"
    assert optimizer.base_config_source == str(study_dir / "config.yaml")


def test_checkpoint_options_in_a_study(study_dir):
    data = with_entry("optimization", "checkpoint_compression", "zstd")
    data["optimization"]["checkpoint_every"] = 2
    study = load_study(write_study(study_dir, data))
    config = study.build_optimizer(experiment_dir=str(study_dir / "exp")).optimization_config
    assert (config.checkpoint_compression, config.checkpoint_every) == ("zstd", 2)


@pytest.mark.parametrize(
    "section, key, value, expected",
    [
        ("optimization", "max_epochs", 0, "optimization.max_epochs: The value of `max_epochs` is 0"),
        ("optimization", "checkpoint_compression", "zip", "`checkpoint_compression` is 'zip', but must be `one of ['zstd', None]`"),
        ("strategy", "grace", 1, "strategy: Invalid arguments for strategy 'asha'"),
        ("search_space", "not_an_arg", {"uniform": [0, 1]}, "search_space.not_an_arg: Search-space name 'not_an_arg' matches no"),
    ],
)
def test_build_errors_name_their_yaml_path(study_dir, section, key, value, expected):
    study = load_study(write_study(study_dir, with_entry(section, key, value)))
    with pytest.raises(StudyError) as info:
        study.build_optimizer()
    assert expected in str(info.value)


def test_base_config_with_bad_class_path(study_dir, base_dict):
    base_dict["model"]["class_path"] = "no_such_module.Model"
    data = with_entry("base_config", None, base_dict)
    with pytest.raises(StudyError, match="base_config: .*`model.class_path` is 'no_such_module.Model'"):
        load_study(write_study(study_dir, data)).build_optimizer()


def test_run_with_invalid_study_exits_2_without_traceback(study_dir, capsys):
    path = write_study(study_dir, with_entry("search_space", "lr", {"logunform": [1.0e-4, 1.0e-1]}))
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: search_space.lr: unknown distribution 'logunform'; use one of [")
    assert "Traceback" not in err


def test_run_with_missing_study_exits_2(tmp_path, capsys):
    assert main(["run", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml: file not found" in capsys.readouterr().err


def test_parse_study_accepts_loaded_data(tmp_path, base_dict):
    study = parse_study({"base_config": base_dict, "search_space": {"lr": 0.1}, "metric": "m"}, tmp_path / "s.yaml")
    assert study.space == {"lr": {"constant": 0.1}}
