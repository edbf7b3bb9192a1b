"""`SearchSpace` validation and `ConfigDrivenOptimizer` construction: all errors come before Ray starts."""

import pytest
from ray import tune

from lightning_bohb.core.optimization_config import OptimizationConfig
from lightning_bohb.core.optimizer import ConfigDrivenOptimizer
from lightning_bohb.core.search_space import SearchSpace
from lightning_bohb.core.strategies import ASHAStrategy, RandomStrategy
from lightning_bohb.exceptions import ConfigError


class Space(SearchSpace):
    def __init__(self, space=None, metric=None):
        self.space = {"lr": tune.loguniform(1e-4, 1e-1), "batch_size": tune.choice([16, 32])} if space is None else space
        self.metric = {"metric": "val_loss", "mode": "min"} if metric is None else metric

    def get_search_space(self):
        return self.space

    def get_metric_config(self):
        return self.metric


@pytest.mark.parametrize("metric", [{"mode": "min"}, {"metric": ""}, "val_loss", []])
def test_metric_config_without_metric(metric):
    with pytest.raises(ConfigError, match="get_metric_config\\(\\) returned"):
        Space(metric=metric).validated_metric()


def test_metric_config_bad_mode():
    with pytest.raises(ConfigError) as info:
        Space(metric={"metric": "val_acc", "mode": "maximize"}).validated_metric()
    assert "mode: must be 'min' or 'max', got 'maximize'" in str(info.value)


def test_metric_mode_defaults_to_min():
    assert Space(metric={"metric": "val_loss"}).validated_metric() == {"metric": "val_loss", "mode": "min"}


@pytest.mark.parametrize("space", [{}, [("lr", 0.1)]])
def test_empty_or_non_dict_search_space(space):
    with pytest.raises(ConfigError, match="Space.get_search_space\\(\\) returned .*non-empty dict"):
        Space(space=space).validated_space()


def test_optimizer_constructs_without_ray(base_dict):
    import ray

    optimizer = ConfigDrivenOptimizer(
        base_dict, Space(), strategy=ASHAStrategy(), optimization_config=OptimizationConfig(max_epochs=2, seed=3)
    )
    assert optimizer.parameter_paths == {"lr": "model.init_args.lr", "batch_size": "data.init_args.batch_size"}
    assert (optimizer.metric, optimizer.mode) == ("val_loss", "min")
    assert optimizer.base_config_source is None
    spec = optimizer.trial_spec()
    assert (spec.max_epochs, spec.seed, spec.metric) == (2, 3, "val_loss")
    assert isinstance(ConfigDrivenOptimizer(base_dict, Space()).strategy, RandomStrategy)
    assert not ray.is_initialized()


def test_optimizer_records_yaml_source(example_yaml):
    assert ConfigDrivenOptimizer(example_yaml, Space()).base_config_source == str(example_yaml)


def test_optimizer_rejects_wrong_argument_types(base_dict):
    with pytest.raises(ConfigError, match="`search_space` must be a SearchSpace instance, got dict"):
        ConfigDrivenOptimizer(base_dict, {"lr": tune.uniform(0, 1)})
    with pytest.raises(ConfigError, match="`strategy` must be a Strategy .* got str"):
        ConfigDrivenOptimizer(base_dict, Space(), strategy="bohb")


def test_optimizer_rejects_unknown_search_space_name(base_dict):
    import ray

    with pytest.raises(ConfigError, match="'learning_rate' matches no init argument"):
        ConfigDrivenOptimizer(base_dict, Space(space={"learning_rate": tune.uniform(0, 1)}))
    with pytest.raises(ConfigError, match="mode: must be 'min' or 'max', got 'up'"):
        ConfigDrivenOptimizer(base_dict, Space(metric={"metric": "val_loss", "mode": "up"}))
    with pytest.raises(ConfigError, match="not found"):
        ConfigDrivenOptimizer("/no/such/config.yaml", Space())
    assert not ray.is_initialized()
