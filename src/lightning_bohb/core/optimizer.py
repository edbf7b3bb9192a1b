"""`ConfigDrivenOptimizer`: a Ray Tune search over a LightningCLI-style config."""

from __future__ import annotations

import datetime
import os
import sys
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import yaml

from lightning_bohb.core.base_config import load_base_config, resolve_parameter_paths
from lightning_bohb.core.optimization_config import OptimizationConfig
from lightning_bohb.core.search_space import SearchSpace
from lightning_bohb.core.strategies import RandomStrategy, Strategy
from lightning_bohb.core.trainable import TrialSpec, train_trial
from lightning_bohb.exceptions import ConfigError
from lightning_bohb.log import logger
from lightning_bohb.utils.files import atomic_write

BEST_CONFIG_FILE = "best_config.yaml"
RAY_EXPERIMENT_FOLDER = "tune"


class ConfigDrivenOptimizer:
    """Search the hyperparameters of a Lightning model described by a LightningCLI config.

    Everything is validated here, before Ray starts: the YAML, its class paths, and that every
    search-space name sets exactly one place in the config.

    Args:
        base_config_source: Path of the YAML you give ``LightningCLI fit --config``, or the same dict.
        search_space: The hyperparameters and the metric.
        strategy: Search strategy; `RandomStrategy` if omitted.
        optimization_config: Budget, concurrency and output folders.
    """

    def __init__(
        self,
        base_config_source: Union[str, Path, Mapping[str, Any]],
        search_space: SearchSpace,
        strategy: Optional[Strategy] = None,
        optimization_config: Optional[OptimizationConfig] = None,
    ) -> None:
        if not isinstance(search_space, SearchSpace):
            raise ConfigError(f"`search_space` must be a SearchSpace instance, got {type(search_space).__name__}.")
        if strategy is not None and not isinstance(strategy, Strategy):
            raise ConfigError(f"`strategy` must be a Strategy (e.g. BOHBStrategy()), got {type(strategy).__name__}.")
        self.base_config_source = str(base_config_source) if isinstance(base_config_source, (str, Path)) else None
        self.base_config = load_base_config(base_config_source)
        self.search_space = search_space
        self.strategy = strategy or RandomStrategy()
        self.optimization_config = optimization_config or OptimizationConfig()
        self.metric_config = search_space.validated_metric()
        self.space = search_space.validated_space()
        self.parameter_paths = resolve_parameter_paths(self.base_config, list(self.space))

    @property
    def metric(self) -> str:
        return self.metric_config["metric"]

    @property
    def mode(self) -> str:
        return self.metric_config["mode"]

    def default_output_dir(self) -> Path:
        return self.optimization_config.experiment_path

    def trial_spec(self, control_name: Optional[str] = None, check_interval: float = 1.0) -> TrialSpec:
        return TrialSpec(
            base_config=self.base_config,
            parameter_paths=self.parameter_paths,
            max_epochs=self.optimization_config.max_epochs,
            metric=self.metric,
            seed=self.optimization_config.seed,
            control_name=control_name,
            check_interval=check_interval,
            sys_path=[os.path.abspath(p) for p in sys.path if p],
        )

    def build_search(self):
        """A fresh ``(search_alg, scheduler)`` for this search (a FIFO scheduler when the strategy has none)."""
        config = self.optimization_config
        search_alg, scheduler = self.strategy.build(
            max_t=config.max_epochs, max_concurrent=config.max_concurrent_trials or 0, seed=config.seed
        )
        if scheduler is None:
            from ray.tune.schedulers import FIFOScheduler

            scheduler = FIFOScheduler()
        return search_alg, scheduler

    def run(
        self,
        output_dir: Optional[Union[str, Path]] = None,
        experiment_folder: Optional[str] = None,
        resume: bool = False,
        callbacks: Sequence[Any] = (),
        control_name: Optional[str] = None,
        verbose: int = 1,
        write_best: bool = True,
        search: Optional[Tuple[Any, Any]] = None,
        storage_filesystem: Any = None,
    ):
        """Run (or, with ``resume=True``, continue) the search; returns Ray's `ResultGrid`.

        Args:
            output_dir: Folder for the Ray experiment and ``best_config.yaml``
                (default ``<experiment_dir>/<experiment_name>``).
            experiment_folder: Name of the Ray experiment inside ``output_dir``
                (default ``tune_<timestamp>``; needed to resume).
            resume: Continue the Ray experiment in ``output_dir/experiment_folder``.
            callbacks: Extra Ray Tune callbacks.
            control_name: Name of the session's pause-control actor, given to every trial.
            verbose: Ray Tune's verbosity (0 silent, 1 status table).
            write_best: Write ``best_config.yaml`` to ``output_dir`` when the run ends.
            search: ``(search_alg, scheduler)`` from `build_search`, when the caller needs them
                (a session keeps the scheduler's state); default: built here.
            storage_filesystem: The ``pyarrow.fs.FileSystem`` Tune writes the experiment through.
        """
        from ray import tune
        from ray.tune import CheckpointConfig, ResultGrid
        from ray.tune.tune_config import ResumeConfig

        output_dir = Path(output_dir) if output_dir else self.default_output_dir()
        output_dir.mkdir(parents=True, exist_ok=True)
        if experiment_folder is None:
            experiment_folder = datetime.datetime.now().strftime("tune_%Y%m%d_%H%M%S")
        config = self.optimization_config
        search_alg, scheduler = search if search is not None else self.build_search()
        trainable = tune.with_resources(
            tune.with_parameters(train_trial, spec=self.trial_spec(control_name)),
            {"cpu": config.cpus_per_trial, "gpu": config.gpus_per_trial},
        )
        resume_config = None
        if resume:
            errored: Any = {
                "resume": ResumeConfig.ResumeType.RESUME,
                "restart": ResumeConfig.ResumeType.RESTART,
                "fail": ResumeConfig.ResumeType.SKIP,
            }[config.errored_trial_policy]
            resume_config = ResumeConfig(unfinished=ResumeConfig.ResumeType.RESUME, errored=errored)  # type: ignore[arg-type]
        analysis = tune.run(
            trainable,
            name=experiment_folder,
            storage_path=str(output_dir),
            storage_filesystem=storage_filesystem,
            config=self.space,
            num_samples=config.num_samples,
            search_alg=search_alg,
            scheduler=scheduler,
            metric=self.metric,
            mode=self.mode,
            checkpoint_config=CheckpointConfig(num_to_keep=config.checkpoints_to_keep),
            callbacks=list(callbacks),
            reuse_actors=True,
            raise_on_failed_trial=False,
            resume_config=resume_config,
            verbose=verbose,
        )
        results = ResultGrid(analysis)
        if write_best:
            self.write_best_config(results, output_dir)
        return results

    def best_trial_config(self, results) -> Optional[Dict[str, Any]]:
        """The complete LightningCLI config of the best trial, or ``None`` if no trial reported."""
        try:
            best = results.get_best_result(metric=self.metric, mode=self.mode, filter_nan_and_inf=True)
        except RuntimeError:
            return None
        if not best.config or best.metrics is None or self.metric not in best.metrics:
            return None
        return self.trial_spec().merged_config(best.config)

    def write_best_config(self, results, output_dir: Path) -> Optional[Path]:
        best = self.best_trial_config(results)
        if best is None:
            logger.warning("No trial reported %r; %s was not written.", self.metric, BEST_CONFIG_FILE)
            return None
        path = Path(output_dir) / BEST_CONFIG_FILE
        atomic_write(path, yaml.safe_dump(best, sort_keys=False))
        return path
