"""`SearchSpace`: the user's hyperparameters and the metric they are judged by.

Also the one vocabulary of distributions (Ray Tune's function names) that study files use and
session summaries print, and the one check of a metric config.
"""

from __future__ import annotations

import abc
from typing import Any, Dict, List, Tuple

from lightning_bohb.exceptions import ConfigError
from lightning_bohb.utils.plain import to_plain

DISTRIBUTIONS: Dict[str, tuple] = {
    "uniform": (("lower", "upper"), False, False),
    "quniform": (("lower", "upper", "q"), False, False),
    "loguniform": (("lower", "upper"), False, True),
    "qloguniform": (("lower", "upper", "q"), False, True),
    "randint": (("lower", "upper"), True, False),
    "qrandint": (("lower", "upper", "q"), True, False),
    "lograndint": (("lower", "upper"), True, True),
    "choice": ((), False, False),
}
"""Ray Tune distribution name -> (argument names, integer arguments, bounds must be > 0)."""

MODES = ("min", "max")


def metric_problems(config: Any) -> Tuple[Dict[str, str], List[str]]:
    """``({"metric", "mode"}, problems)`` for a metric config; each problem starts with its key."""
    if not isinstance(config, dict):
        return {}, [f"must be a mapping {{metric: <logged name>, mode: min|max}}, got {config!r}"]
    problems = [f"{key}: unknown key; use `metric` and `mode`" for key in config if key not in ("metric", "mode")]
    metric, mode = config.get("metric"), config.get("mode", "min")
    if not isinstance(metric, str) or not metric.strip():
        problems.append(f"metric: must be the name of a metric your model logs, got {metric!r}")
    if mode not in MODES:
        problems.append(f"mode: must be 'min' or 'max', got {mode!r}")
    return {"metric": str(metric), "mode": str(mode)}, problems


class SearchSpace(abc.ABC):
    """Subclass and return Ray Tune domains keyed by config path or init-argument name.

    Example::

        class MySearchSpace(SearchSpace):
            VERSION = "1.0.0"

            def get_search_space(self):
                return {"lr": tune.loguniform(1e-4, 1e-1), "trainer.gradient_clip_val": tune.uniform(0, 1)}

            def get_metric_config(self):
                return {"metric": "val_loss", "mode": "min"}
    """

    VERSION: str = "0"

    @abc.abstractmethod
    def get_search_space(self) -> Dict[str, Any]:
        """Ray Tune domains (``tune.loguniform``, ``tune.choice``, ...) or constants, by name."""

    @abc.abstractmethod
    def get_metric_config(self) -> Dict[str, str]:
        """``{"metric": <logged metric name>, "mode": "min" | "max"}``."""

    def validated_metric(self) -> Dict[str, str]:
        config = self.get_metric_config()
        checked, problems = metric_problems(config)
        if problems:
            raise ConfigError(
                f"{type(self).__name__}.get_metric_config() returned {config!r} ({'; '.join(problems)}); "
                "return {'metric': '<a metric your model logs>', 'mode': 'min' or 'max'}."
            )
        return checked

    def validated_space(self) -> Dict[str, Any]:
        space = self.get_search_space()
        if not isinstance(space, dict) or not space:
            raise ConfigError(
                f"{type(self).__name__}.get_search_space() returned {space!r}; return a non-empty dict "
                "of Ray Tune domains, e.g. {'lr': tune.loguniform(1e-4, 1e-1)}."
            )
        return space


def describe_domain(domain: Any) -> Any:
    """A Ray Tune domain as readable text (``loguniform(0.0001, 0.1)``, ``choice([16, 32])``)."""
    plain = to_plain(domain)
    if isinstance(plain, (int, float, str, bool, type(None), list, dict)):
        return plain
    categories = getattr(domain, "categories", None)
    if categories is not None:
        return f"choice({to_plain(list(categories))})"
    lower, upper = getattr(domain, "lower", None), getattr(domain, "upper", None)
    if lower is not None:
        sampler = type(getattr(domain, "sampler", None)).__name__.lstrip("_").lower()
        kind = "loguniform" if "log" in sampler else "uniform"
        if type(domain).__name__ == "Integer":
            kind = "randint" if kind == "uniform" else "lograndint"
        return f"{kind}({lower}, {upper})"
    return repr(domain)
