"""Search strategies: each maps onto Ray Tune's own searcher and scheduler.

Backends are imported lazily, so `import lightning_bohb` never imports hpbandster, optuna or hyperopt.
"""

from __future__ import annotations

import abc
import importlib
from typing import Any, Callable, Dict, Optional, Tuple

from lightning_bohb.exceptions import ConfigError, MissingDependencyError

TIME_ATTR = "training_iteration"
"""Scheduler budget: one unit per validation (one epoch with Lightning's defaults)."""

_BACKENDS = {
    "bohb": ("ray.tune.search.bohb", ("hpbandster", "ConfigSpace")),
    "optuna": ("ray.tune.search.optuna", ("optuna",)),
    "hyperopt": ("ray.tune.search.hyperopt", ("hyperopt",)),
}


def _require_backend(extra: str) -> None:
    module, packages = _BACKENDS[extra]
    for package in packages:
        try:
            importlib.import_module(package)
        except ImportError as err:
            raise MissingDependencyError(
                f"The {extra!r} strategy needs {package!r}, which does not import ({err}). "
                f"Install it with: pip install 'lightning-bohb[{extra}]'"
            ) from err


class Strategy(abc.ABC):
    """A search algorithm plus an optional trial scheduler, built fresh for each run."""

    name: str = ""

    def __init__(self, seed: Optional[int] = None) -> None:
        self.seed = seed

    @abc.abstractmethod
    def build(self, max_t: int, max_concurrent: int, seed: Optional[int]) -> Tuple[Any, Any]:
        """Return ``(search_alg, scheduler)`` for `ray.tune.run` (which sets metric and mode).

        ``max_concurrent`` 0 means unlimited; ``seed`` is used when the strategy has none.
        """

    def effective_seed(self, default: Optional[int]) -> Optional[int]:
        return self.seed if self.seed is not None else default

    def describe(self) -> Dict[str, Any]:
        """Plain-data description, for the session summary."""
        params = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        return {"name": self.name or type(self).__name__, **params}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.describe().items() if k != "name")
        return f"{type(self).__name__}({args})"


def _check_budget(grace_period: int, reduction_factor: float, max_t: Optional[int]) -> None:
    if grace_period < 1:
        raise ConfigError(f"The value of `grace_period` is {grace_period}, but must be `grace_period >= 1`.")
    if reduction_factor <= 1:
        raise ConfigError(f"The value of `reduction_factor` is {reduction_factor}, but must be `reduction_factor > 1`.")
    if max_t is not None and max_t < grace_period:
        raise ConfigError(f"The value of `max_t` is {max_t}, but must be `max_t >= grace_period` ({grace_period}).")


def _check_setting(name: str, value: Any, kind: type, ok: Callable[[Any], bool], rule: str) -> None:
    """One setting: of ``kind`` (an int is a float too; a bool is neither) and within ``rule``."""
    kinds = (int, float) if kind is float else (int,)
    if isinstance(value, bool) or not isinstance(value, kinds) or not ok(value):
        raise ConfigError(f"The value of `{name}` is {value!r}, but must be `{rule}`.")


def _random_generator(max_concurrent: int, seed: Optional[int]):
    from ray.tune.search.basic_variant import BasicVariantGenerator

    # TuneConfig's max_concurrent_trials is ignored for this generator: the limit must reach it.
    return BasicVariantGenerator(max_concurrent=max_concurrent, random_state=seed)


def _limited(searcher, max_concurrent: int):
    from ray.tune.search import ConcurrencyLimiter

    return ConcurrencyLimiter(searcher, max_concurrent=max_concurrent) if max_concurrent else searcher


class BOHBStrategy(Strategy):
    """BOHB (Falkner et al. 2018): a density model proposes, HyperBand stops (needs ``lightning-bohb[bohb]``).

    The searcher is Ray's `TuneBOHB` (hpbandster's config generator) and the scheduler Ray's
    `HyperBandForBOHB`, both with this package's fixes (`lightning_bohb._ray.bohb_searcher`,
    `lightning_bohb._ray.bohb_scheduler`): brackets as the paper schedules them at any concurrency,
    every rung result given to the model, and every random draw seeded from ``seed``.

    Args:
        grace_period: The smallest budget you intend; HyperBand derives its brackets from ``max_t`` and
            ``reduction_factor`` alone, so it is validated and recorded, not passed on.
        reduction_factor: HyperBand's ``eta``: each rung keeps ``1/eta`` of its trials for ``eta`` times
            the epochs.
        max_t: Epochs of the largest budget; default ``max_epochs``.
        seed: Seeds the ConfigSpace and the model's draws; default ``OptimizationConfig.seed``.
        min_points_in_model: Results a budget needs before its model proposes; ``None`` means the
            number of hyperparameters + 1 (hpbandster raises smaller values to that, with a warning).
        top_n_percent: Percent of a budget's results (best first) the "good" density is fit on.
        num_samples: Candidates drawn from the good density per proposal; the best by the ratio of
            good to bad density is proposed.
        random_fraction: Fraction of proposals drawn at random from the prior, model or not.
        bandwidth_factor: Widens the good density's bandwidth when drawing candidates.
        min_bandwidth: Smallest bandwidth of a density, so that equal values keep some diversity.
    """

    name = "bohb"
    # Class defaults: a strategy pickled by 0.1.0 (before these settings) reads them here.
    min_points_in_model: Optional[int] = None
    top_n_percent: int = 15
    num_samples: int = 64
    random_fraction: float = 1 / 3
    bandwidth_factor: float = 3
    min_bandwidth: float = 1e-3

    def __init__(
        self,
        grace_period: int = 1,
        reduction_factor: float = 3,
        max_t: Optional[int] = None,
        seed: Optional[int] = None,
        min_points_in_model: Optional[int] = None,
        top_n_percent: int = 15,
        num_samples: int = 64,
        random_fraction: float = 1 / 3,
        bandwidth_factor: float = 3,
        min_bandwidth: float = 1e-3,
    ) -> None:
        super().__init__(seed)
        _check_budget(grace_period, reduction_factor, max_t)
        if min_points_in_model is not None:
            _check_setting("min_points_in_model", min_points_in_model, int, lambda v: v >= 1, "min_points_in_model >= 1")
        _check_setting("top_n_percent", top_n_percent, int, lambda v: 0 < v < 100, "0 < top_n_percent < 100")
        _check_setting("num_samples", num_samples, int, lambda v: v >= 1, "num_samples >= 1")
        _check_setting("random_fraction", random_fraction, float, lambda v: 0 <= v <= 1, "0 <= random_fraction <= 1")
        _check_setting("bandwidth_factor", bandwidth_factor, float, lambda v: v > 0, "bandwidth_factor > 0")
        _check_setting("min_bandwidth", min_bandwidth, float, lambda v: v > 0, "min_bandwidth > 0")
        self.grace_period, self.reduction_factor, self.max_t = grace_period, reduction_factor, max_t
        self.min_points_in_model, self.top_n_percent, self.num_samples = min_points_in_model, top_n_percent, num_samples
        self.random_fraction, self.bandwidth_factor, self.min_bandwidth = random_fraction, bandwidth_factor, min_bandwidth

    def build(self, max_t, max_concurrent, seed):
        _require_backend("bohb")
        from lightning_bohb._ray.bohb_scheduler import ResumableHyperBandForBOHB
        from lightning_bohb._ray.bohb_searcher import ReproducibleTuneBOHB

        settings = {
            "min_points_in_model": self.min_points_in_model,
            "top_n_percent": self.top_n_percent,
            "num_samples": self.num_samples,
            "random_fraction": self.random_fraction,
            "bandwidth_factor": self.bandwidth_factor,
            "min_bandwidth": self.min_bandwidth,
        }
        # TuneBOHB's own limit leaves out trials HyperBand paused; a ConcurrencyLimiter counts them
        # and can starve a bracket that waits for them.
        searcher = ReproducibleTuneBOHB(bohb_config=settings, seed=self.effective_seed(seed), max_concurrent=max_concurrent)
        scheduler = ResumableHyperBandForBOHB(
            time_attr=TIME_ATTR, max_t=self.max_t or max_t, reduction_factor=self.reduction_factor
        )
        return searcher, scheduler


class ASHAStrategy(Strategy):
    """Random sampling with Ray's asynchronous successive halving (`ASHAScheduler`)."""

    name = "asha"

    def __init__(self, grace_period: int = 1, reduction_factor: float = 3, max_t: Optional[int] = None, seed: Optional[int] = None) -> None:
        super().__init__(seed)
        _check_budget(grace_period, reduction_factor, max_t)
        self.grace_period, self.reduction_factor, self.max_t = grace_period, reduction_factor, max_t

    def build(self, max_t, max_concurrent, seed):
        from ray.tune.schedulers import ASHAScheduler

        _check_budget(self.grace_period, self.reduction_factor, self.max_t or max_t)
        scheduler = ASHAScheduler(
            time_attr=TIME_ATTR,
            max_t=self.max_t or max_t,
            grace_period=self.grace_period,
            reduction_factor=self.reduction_factor,
        )
        return _random_generator(max_concurrent, self.effective_seed(seed)), scheduler


class OptunaStrategy(Strategy):
    """Optuna's TPE sampler through Ray's `OptunaSearch` (needs ``lightning-bohb[optuna]``)."""

    name = "optuna"

    def __init__(self, seed: Optional[int] = None, n_startup_trials: int = 10) -> None:
        super().__init__(seed)
        if n_startup_trials < 0:
            raise ConfigError(f"The value of `n_startup_trials` is {n_startup_trials}, but must be `n_startup_trials >= 0`.")
        self.n_startup_trials = n_startup_trials

    def build(self, max_t, max_concurrent, seed):
        _require_backend("optuna")
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        sampler = optuna.samplers.TPESampler(seed=self.effective_seed(seed), n_startup_trials=self.n_startup_trials)
        return _limited(OptunaSearch(sampler=sampler), max_concurrent), None


class HyperOptStrategy(Strategy):
    """HyperOpt's TPE through Ray's `HyperOptSearch` (needs ``lightning-bohb[hyperopt]``)."""

    name = "hyperopt"

    def __init__(self, seed: Optional[int] = None, n_initial_points: int = 20) -> None:
        super().__init__(seed)
        if n_initial_points < 1:
            raise ConfigError(f"The value of `n_initial_points` is {n_initial_points}, but must be `n_initial_points >= 1`.")
        self.n_initial_points = n_initial_points

    def build(self, max_t, max_concurrent, seed):
        _require_backend("hyperopt")
        from ray.tune.search.hyperopt import HyperOptSearch

        searcher = HyperOptSearch(
            n_initial_points=self.n_initial_points, random_state_seed=self.effective_seed(seed)
        )
        return _limited(searcher, max_concurrent), None


class RandomStrategy(Strategy):
    """Plain random search (Ray's `BasicVariantGenerator`), every trial to ``max_epochs``."""

    name = "random"

    def build(self, max_t, max_concurrent, seed):
        return _random_generator(max_concurrent, self.effective_seed(seed)), None


STRATEGIES = {cls.name: cls for cls in (BOHBStrategy, ASHAStrategy, OptunaStrategy, HyperOptStrategy, RandomStrategy)}


def strategy_from_name(name: str, **kwargs: Any) -> Strategy:
    """Build a strategy by name (``bohb``, ``asha``, ``optuna``, ``hyperopt``, ``random``)."""
    try:
        cls = STRATEGIES[str(name).lower()]
    except KeyError:
        raise ConfigError(f"Unknown strategy {name!r}; choose one of {sorted(STRATEGIES)}.") from None
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ConfigError(f"Invalid arguments for strategy {name!r}: {err}.") from None
