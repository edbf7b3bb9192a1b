"""Strategies: validation at construction, and `build()` returns Ray's own searchers and schedulers."""

import types

import numpy as np
import pytest

from lightning_bohb._ray.bohb_scheduler import ResumableHyperBandForBOHB
from lightning_bohb.core import strategies
from lightning_bohb.core.strategies import (
    TIME_ATTR,
    ASHAStrategy,
    BOHBStrategy,
    HyperOptStrategy,
    OptunaStrategy,
    RandomStrategy,
    strategy_from_name,
)
from lightning_bohb.exceptions import ConfigError, MissingDependencyError


@pytest.mark.parametrize("cls", [BOHBStrategy, ASHAStrategy])
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"grace_period": 0}, "`grace_period` is 0, but must be `grace_period >= 1`"),
        ({"reduction_factor": 1}, "`reduction_factor` is 1, but must be `reduction_factor > 1`"),
        ({"grace_period": 3, "max_t": 2}, "`max_t` is 2, but must be `max_t >= grace_period` (3)"),
    ],
)
def test_budget_validation(cls, kwargs, message):
    with pytest.raises(ConfigError) as info:
        cls(**kwargs)
    assert message in str(info.value)


def test_backend_option_validation():
    with pytest.raises(ConfigError, match="`n_startup_trials` is -1"):
        OptunaStrategy(n_startup_trials=-1)
    with pytest.raises(ConfigError, match="`n_initial_points` is 0"):
        HyperOptStrategy(n_initial_points=0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"min_points_in_model": 0}, "`min_points_in_model` is 0, but must be `min_points_in_model >= 1`"),
        ({"top_n_percent": 100}, "`top_n_percent` is 100, but must be `0 < top_n_percent < 100`"),
        ({"top_n_percent": 1.5}, "`top_n_percent` is 1.5, but must be `0 < top_n_percent < 100`"),
        ({"num_samples": True}, "`num_samples` is True, but must be `num_samples >= 1`"),
        ({"random_fraction": float("nan")}, "`random_fraction` is nan, but must be `0 <= random_fraction <= 1`"),
        ({"bandwidth_factor": "3"}, "`bandwidth_factor` is '3', but must be `bandwidth_factor > 0`"),
        ({"min_bandwidth": 0}, "`min_bandwidth` is 0, but must be `min_bandwidth > 0`"),
    ],
)
def test_bohb_model_settings_validation(kwargs, message):
    with pytest.raises(ConfigError) as info:
        BOHBStrategy(**kwargs)
    assert message in str(info.value)


def test_bohb_model_settings_reach_hpbandster():
    from ray import tune

    settings = dict(min_points_in_model=4, top_n_percent=20, num_samples=16, random_fraction=0.5, bandwidth_factor=2, min_bandwidth=0.01)
    searcher, _ = BOHBStrategy(**settings).build(max_t=9, max_concurrent=1, seed=0)
    searcher.set_search_properties("loss", "min", {"x": tune.uniform(0, 1)})
    model = searcher.bohber
    got = (model.min_points_in_model, model.top_n_percent, model.num_samples, model.random_fraction, model.bw_factor, model.min_bandwidth)
    assert got == tuple(settings.values())
    assert strategy_from_name("bohb", top_n_percent=20).top_n_percent == 20  # the study YAML's way in


def test_a_bohb_strategy_pickled_before_its_model_settings_builds_with_the_defaults():
    old = BOHBStrategy.__new__(BOHBStrategy)  # as 0.1.0 pickled it: these four fields only
    old.__dict__.update(seed=None, grace_period=1, reduction_factor=3, max_t=None)
    searcher, _ = old.build(max_t=9, max_concurrent=1, seed=0)
    defaults = {"min_points_in_model": None, "top_n_percent": 15, "num_samples": 64}
    defaults.update(random_fraction=1 / 3, bandwidth_factor=3, min_bandwidth=1e-3)
    assert searcher._bohb_config == defaults


def test_strategy_from_name():
    strategy = strategy_from_name("BOHB", reduction_factor=2, seed=5)
    assert isinstance(strategy, BOHBStrategy) and strategy.reduction_factor == 2 and strategy.seed == 5
    assert isinstance(strategy_from_name("random"), RandomStrategy)
    with pytest.raises(ConfigError) as info:
        strategy_from_name("grid")
    assert "Unknown strategy 'grid'" in str(info.value)
    assert "['asha', 'bohb', 'hyperopt', 'optuna', 'random']" in str(info.value)
    with pytest.raises(ConfigError, match="Invalid arguments for strategy 'random'"):
        strategy_from_name("random", grace_period=2)


def test_describe_and_repr():
    strategy = ASHAStrategy(grace_period=2, max_t=9)
    assert strategy.describe() == {"name": "asha", "seed": None, "grace_period": 2, "reduction_factor": 3, "max_t": 9}
    assert repr(strategy) == "ASHAStrategy(seed=None, grace_period=2, reduction_factor=3, max_t=9)"


def test_bohb_build():
    from ray.tune.schedulers import HyperBandForBOHB

    from lightning_bohb._ray.bohb_searcher import ReproducibleTuneBOHB

    searcher, scheduler = BOHBStrategy(reduction_factor=2).build(max_t=9, max_concurrent=0, seed=7)
    assert type(searcher) is ReproducibleTuneBOHB and searcher._seed == 7
    assert isinstance(scheduler, HyperBandForBOHB)
    assert scheduler._time_attr == TIME_ATTR and scheduler._max_t_attr == 9 and scheduler._eta == 2

    searcher, scheduler = BOHBStrategy(max_t=4, seed=1).build(max_t=9, max_concurrent=2, seed=7)
    # TuneBOHB's own limit (paused trials do not count), not a ConcurrencyLimiter
    assert type(searcher) is ReproducibleTuneBOHB and searcher._max_concurrent == 2
    assert searcher._seed == 1  # the strategy's seed wins
    assert scheduler._max_t_attr == 4 and isinstance(scheduler, ResumableHyperBandForBOHB)


def _same_stream(rng, seed):
    from ray.tune.search.sample import _BackwardsCompatibleNumpyRng

    return rng.uniform(size=3).tolist() == _BackwardsCompatibleNumpyRng(seed).uniform(size=3).tolist()


def test_asha_build():
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.basic_variant import BasicVariantGenerator

    searcher, scheduler = ASHAStrategy(grace_period=2).build(max_t=9, max_concurrent=3, seed=7)
    assert type(searcher) is BasicVariantGenerator and searcher.max_concurrent == 3
    assert _same_stream(searcher._random_state, 7)
    assert isinstance(scheduler, ASHAScheduler)
    assert scheduler._time_attr == TIME_ATTR and scheduler._max_t == 9 and scheduler._reduction_factor == 3
    assert min(milestone for milestone, _ in scheduler._brackets[0]._rungs) == 2  # grace_period
    assert ASHAStrategy(max_t=5).build(max_t=9, max_concurrent=0, seed=None)[1]._max_t == 5


def test_random_build():
    from ray.tune.search.basic_variant import BasicVariantGenerator

    searcher, scheduler = RandomStrategy(seed=3).build(max_t=9, max_concurrent=4, seed=7)
    assert type(searcher) is BasicVariantGenerator and searcher.max_concurrent == 4
    assert _same_stream(searcher._random_state, 3)
    assert scheduler is None


def test_optuna_build():
    import optuna
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    searcher, scheduler = OptunaStrategy(n_startup_trials=4).build(max_t=9, max_concurrent=2, seed=7)
    assert scheduler is None
    assert isinstance(searcher, ConcurrencyLimiter) and searcher.max_concurrent == 2
    inner = searcher.searcher
    assert isinstance(inner, OptunaSearch)
    assert isinstance(inner._sampler, optuna.samplers.TPESampler) and inner._sampler._n_startup_trials == 4
    assert type(OptunaStrategy().build(max_t=9, max_concurrent=0, seed=None)[0]) is OptunaSearch


def test_hyperopt_build():
    from ray.tune.search.hyperopt import HyperOptSearch

    searcher, scheduler = HyperOptStrategy(n_initial_points=5).build(max_t=9, max_concurrent=0, seed=7)
    assert type(searcher) is HyperOptSearch and scheduler is None
    assert searcher.algo.keywords["n_startup_jobs"] == 5
    assert searcher.rstate.randint(1 << 30) == np.random.RandomState(7).randint(1 << 30)


@pytest.mark.parametrize(
    "strategy, package, extra",
    [(BOHBStrategy(), "hpbandster", "bohb"), (OptunaStrategy(), "optuna", "optuna"), (HyperOptStrategy(), "hyperopt", "hyperopt")],
)
def test_missing_backend_names_the_extra(monkeypatch, strategy, package, extra):
    import importlib

    def fake_import(name, *args, **kwargs):
        if name == package:
            raise ImportError(f"No module named {name!r} (simulated)")
        return importlib.import_module(name, *args, **kwargs)

    monkeypatch.setattr(strategies, "importlib", types.SimpleNamespace(import_module=fake_import))
    with pytest.raises(MissingDependencyError) as info:
        strategy.build(max_t=9, max_concurrent=0, seed=None)
    message = str(info.value)
    assert f"pip install 'lightning-bohb[{extra}]'" in message
    assert f"No module named {package!r} (simulated)" in message
    assert isinstance(info.value, ImportError)
