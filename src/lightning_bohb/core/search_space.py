"""`SearchSpace`: the user's hyperparameters and the metric they are judged by."""

from __future__ import annotations

import abc
from typing import Any, Dict

from lightning_bohb.exceptions import ConfigError


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
        if not isinstance(config, dict) or not config.get("metric"):
            raise ConfigError(
                f"{type(self).__name__}.get_metric_config() returned {config!r}; "
                "return {'metric': '<a metric your model logs>', 'mode': 'min' or 'max'}."
            )
        mode = config.get("mode", "min")
        if mode not in ("min", "max"):
            raise ConfigError(f"The value of `mode` is {mode!r}, but must be `'min'` or `'max'`.")
        return {"metric": str(config["metric"]), "mode": mode}

    def validated_space(self) -> Dict[str, Any]:
        space = self.get_search_space()
        if not isinstance(space, dict) or not space:
            raise ConfigError(
                f"{type(self).__name__}.get_search_space() returned {space!r}; return a non-empty dict "
                "of Ray Tune domains, e.g. {'lr': tune.loguniform(1e-4, 1e-1)}."
            )
        return space
