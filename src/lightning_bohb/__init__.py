"""LightningTune: hyperparameter optimization of Lightning models on Ray Tune, with pause and resume.

Importing this package is cheap: Ray, torch and Lightning load only when a name that needs them is used.
"""

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "ConfigDrivenOptimizer": "lightning_bohb.core.optimizer",
    "OptimizationConfig": "lightning_bohb.core.optimization_config",
    "SearchSpace": "lightning_bohb.core.search_space",
    "Strategy": "lightning_bohb.core.strategies",
    "BOHBStrategy": "lightning_bohb.core.strategies",
    "ASHAStrategy": "lightning_bohb.core.strategies",
    "OptunaStrategy": "lightning_bohb.core.strategies",
    "HyperOptStrategy": "lightning_bohb.core.strategies",
    "RandomStrategy": "lightning_bohb.core.strategies",
    "strategy_from_name": "lightning_bohb.core.strategies",
    "TuneReflowCLI": "lightning_bohb.cli.tune_reflow",
    "TuneSessionState": "lightning_bohb.session.state",
    "TunePauseCallback": "lightning_bohb.callbacks.tune_pause_callback",
    "TuneReportCallback": "lightning_bohb.callbacks.tune_report_callback",
    "RNGStateCallback": "lightning_bohb.callbacks.rng_state",
    "LightningTuneError": "lightning_bohb.exceptions",
    "ConfigError": "lightning_bohb.exceptions",
    "MissingDependencyError": "lightning_bohb.exceptions",
    "SessionError": "lightning_bohb.exceptions",
    "SessionPaused": "lightning_bohb.exceptions",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'lightning_bohb' has no attribute {name!r}")


def __dir__():
    return __all__
