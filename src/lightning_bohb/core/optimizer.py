"""`ConfigDrivenOptimizer`: a Ray Tune search over a LightningCLI-style config."""

from __future__ import annotations

import contextlib
import datetime
import os
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, Mapping, Optional, Sequence, Tuple, Union

import yaml

from lightning_bohb.core.base_config import (
    check_class_paths,
    check_values,
    largest_num_workers,
    load_base_config,
    resolve_parameter_paths,
    split_fit_arguments,
)
from lightning_bohb.core.best_trial import best_of, best_value
from lightning_bohb.core.distributed import DeviceRequest, device_request, trial_resources
from lightning_bohb.core.lightning_cli import CLISpec, dump_config, user_classes
from lightning_bohb.core.optimization_config import OptimizationConfig
from lightning_bohb.core.rerun import rerun_header, trial_threads
from lightning_bohb.core.search_space import SearchSpace, describe_domain
from lightning_bohb.core.strategies import RandomStrategy, Strategy
from lightning_bohb.core.trainable import TrialSpec, seed_environment, train_trial
from lightning_bohb.exceptions import ConfigError
from lightning_bohb.log import logger
from lightning_bohb.utils.layout import BEST_CONFIG_FILE
from lightning_bohb.utils.location_backend import prepare_location, write_at


class ConfigDrivenOptimizer:
    """Search the hyperparameters of a Lightning model described by a LightningCLI config.

    Trials are built by your `LightningCLI` (``run=False``, the trial's config as ``args``), so any
    config ``python main.py fit --config c.yaml`` accepts is accepted. Everything is validated here,
    before Ray starts, by that CLI's parser: the YAML, every search-space path, and one sample of
    every domain (every category of a choice).

    Args:
        base_config_source: Path of the YAML you give ``LightningCLI fit --config``, or the same dict.
        search_space: The hyperparameters and the metric.
        strategy: Search strategy; `RandomStrategy` if omitted.
        optimization_config: Budget, concurrency and output folders.
        cli_class: Your `LightningCLI` subclass, if your ``main.py`` uses one (``add_arguments_to_parser``,
            ``link_arguments``); default `LightningCLI`.
        model_class, datamodule_class, subclass_mode_model, subclass_mode_data: As in your
            ``LightningCLI(...)`` call (``LightningCLI(MyModel, MyData)``: ``model:`` holds init args).
        **cli_kwargs: Any other `LightningCLI` argument your ``main.py`` passes (``trainer_defaults``,
            ``seed_everything_default``, ``parser_kwargs``, ``auto_configure_optimizers``, ...).
    """

    def __init__(
        self,
        base_config_source: Union[str, Path, Mapping[str, Any]],
        search_space: SearchSpace,
        strategy: Optional[Strategy] = None,
        optimization_config: Optional[OptimizationConfig] = None,
        *,
        cli_class: Optional[type] = None,
        model_class: Any = None,
        datamodule_class: Any = None,
        subclass_mode_model: bool = False,
        subclass_mode_data: bool = False,
        **cli_kwargs: Any,
    ) -> None:
        if not isinstance(search_space, SearchSpace):
            raise ConfigError(f"`search_space` must be a SearchSpace instance, got {type(search_space).__name__}.")
        if strategy is not None and not isinstance(strategy, Strategy):
            raise ConfigError(f"`strategy` must be a Strategy (e.g. BOHBStrategy()), got {type(strategy).__name__}.")
        self.cli = CLISpec(cli_class, model_class, datamodule_class, bool(subclass_mode_model), bool(subclass_mode_data), dict(cli_kwargs))
        self.base_config_source = str(base_config_source) if isinstance(base_config_source, (str, Path)) else None
        self.base_config = load_base_config(base_config_source)
        near = [str(Path(self.base_config_source).expanduser().resolve().parent.parent)] if self.base_config_source else []
        check_class_paths(self.base_config, near)  # from the files, before Lightning's import: a missing class fails at once
        self.cli.validate()
        self.search_space = search_space
        self.strategy = strategy or RandomStrategy()
        self.optimization_config = optimization_config or OptimizationConfig()
        self.metric_config = search_space.validated_metric()
        self.space = search_space.validated_space()
        self._cli_config, self.fit_arguments = split_fit_arguments(self.base_config)
        origin = repr(self.base_config_source) if self.base_config_source else "the base config dict"
        self._parser, self._parsed = self.cli.parse(self._cli_config, origin)
        self.parameter_paths = resolve_parameter_paths(self._parsed, list(self.space))
        self.seed = self._trial_seed()
        check_values(self._parser.parse_object, self._cli_config, self.space, self.parameter_paths, describe_domain)
        self._warn_about_loader_workers()
        self.device_request()  # a trainer asking for devices the trial does not reserve fails here, before Ray

    @property
    def cli_arguments(self) -> Dict[str, Any]:
        """The LightningCLI keyword arguments this optimizer was given (to rebuild it on resume)."""
        spec = self.cli
        arguments = {
            "cli_class": spec.cli_class,
            "model_class": spec.model_class,
            "datamodule_class": spec.datamodule_class,
            "subclass_mode_model": spec.subclass_mode_model,
            "subclass_mode_data": spec.subclass_mode_data,
            **spec.kwargs,
        }
        return {k: v for k, v in arguments.items() if v not in (None, False) or k in spec.kwargs}

    def user_classes(self) -> list:
        """The model, datamodule (and CLI) classes the config names, as the parser resolved them."""
        return user_classes(self._parsed, self.cli)

    def _trial_seed(self) -> Optional[int]:
        """``OptimizationConfig.seed``; else LightningCLI's ``seed_everything: true`` resolved as it does
        (``seed_everything()``: ``PL_GLOBAL_SEED`` or 0), so trials and best_config.yaml record a number."""
        if self.optimization_config.seed is not None or "seed_everything" in self.parameter_paths.values():
            return self.optimization_config.seed  # a searched seed_everything is the trial's own
        configured = self._parsed.get("seed_everything")
        if configured is True:
            return int(os.environ.get("PL_GLOBAL_SEED", 0))
        return None

    def device_request(self) -> DeviceRequest:
        """The trainer's devices per trial, checked against ``cpus_per_trial``/``gpus_per_trial`` (`ConfigError`)."""
        config = self.optimization_config
        trainer = self._parsed.get("trainer") if getattr(self, "_parsed", None) is not None else None
        if trainer is None:
            trainer = self._cli_config.get("trainer") or {}
        if not (isinstance(trainer, Mapping) or hasattr(trainer, "as_dict")):
            trainer = {}  # what LightningCLI made of a `trainer:` that is no section: its defaults
        return device_request(trainer, config.cpus_per_trial, config.gpus_per_trial, list(self.parameter_paths.values()))

    def trial_resources(self) -> Any:
        """What Ray reserves per trial: ``{"cpu", "gpu"}``, or a placement group of one bundle per DDP rank."""
        config = self.optimization_config
        return trial_resources(self.device_request().ranks, config.cpus_per_trial, config.gpus_per_trial)

    def trial_threads(self) -> int:
        """The torch thread count every rank of a trial trains with (`lightning_bohb.core.rerun`)."""
        return trial_threads(self.optimization_config.cpus_per_trial, self.device_request().ranks)

    def _warn_about_loader_workers(self) -> None:
        """Once, before Ray starts: loader workers Ray does not reserve CPUs for."""
        workers = largest_num_workers(self._parsed, self.space, self.parameter_paths)
        cpus = self.optimization_config.cpus_per_trial
        if workers and cpus < 1 + workers:
            logger.warning(
                "Trials start DataLoader worker processes (num_workers: %d) but each reserves cpus_per_trial=%s: "
                "Ray would run more busy processes than CPUs it reserved. Reserve them: OptimizationConfig(cpus_per_trial=%d).",
                workers,
                cpus,
                1 + workers,
            )

    def __getstate__(self) -> Dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_parser", None)  # rebuilt on demand: jsonargparse parsers are not meant to be pickled
        return state

    def _parser_for_dump(self) -> Any:
        if getattr(self, "_parser", None) is None:
            self._parser, self._parsed = self.cli.parse(self._cli_config)
        return self._parser

    @property
    def metric(self) -> str:
        return self.metric_config["metric"]

    @property
    def mode(self) -> str:
        return self.metric_config["mode"]

    def default_output_dir(self) -> str:
        """``<experiment_dir>/<experiment_name>`` of the config: a URI, or an absolute folder."""
        return self.optimization_config.experiment_location

    def trial_spec(self, control_name: Optional[str] = None, check_interval: float = 1.0, control_key: Optional[str] = None) -> TrialSpec:
        return TrialSpec(
            base_config=self._cli_config,
            parameter_paths=self.parameter_paths,
            max_epochs=self.optimization_config.max_epochs,
            metric=self.metric,
            seed=self.seed,
            control_name=control_name,
            control_key=control_key,
            check_interval=check_interval,
            sys_path=[os.path.abspath(p) for p in sys.path if p],
            cli=self.cli,
            fit_arguments=dict(self.fit_arguments),
            environment=seed_environment(),
            ranks=self.device_request().ranks,
            threads=self.trial_threads(),
            checkpoint_compression=self.optimization_config.checkpoint_compression,
            checkpoint_every=self.optimization_config.checkpoint_every,
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
        _check_checkpoint_every(config.checkpoint_every, scheduler)
        return search_alg, scheduler

    def run(
        self,
        output_dir: Optional[Union[str, Path]] = None,
        experiment_folder: Optional[str] = None,
        resume: bool = False,
        callbacks: Sequence[Any] = (),
        control_name: Optional[str] = None,
        control_key: Optional[str] = None,
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
            control_key: The session key its calls that change the actor carry (`lightning_bohb.pause.channel`).
            verbose: Ray Tune's verbosity (0 silent, 1 status table).
            write_best: Write ``best_config.yaml`` to ``output_dir`` when the run ends.
            search: ``(search_alg, scheduler)`` from `build_search`, when the caller needs them
                (a session keeps the scheduler's state); default: built here.
            storage_filesystem: The ``pyarrow.fs.FileSystem`` Tune writes the experiment through.
        """
        from ray import tune
        from ray.tune import CheckpointConfig, ResultGrid
        from ray.tune.tune_config import ResumeConfig

        output_dir = output_dir or self.default_output_dir()
        storage_path = prepare_location(output_dir)  # a URI: Tune writes the experiment through it
        if experiment_folder is None:
            experiment_folder = datetime.datetime.now().strftime("tune_%Y%m%d_%H%M%S")
        config = self.optimization_config
        search_alg, scheduler = search if search is not None else self.build_search()
        trainable = tune.with_resources(
            tune.with_parameters(train_trial, spec=self.trial_spec(control_name, control_key=control_key)),
            self.trial_resources(),
        )
        resume_config = None
        if resume:
            errored: Any = {
                "resume": ResumeConfig.ResumeType.RESUME,
                "restart": ResumeConfig.ResumeType.RESTART,
                "fail": ResumeConfig.ResumeType.SKIP,
            }[config.errored_trial_policy]
            resume_config = ResumeConfig(unfinished=ResumeConfig.ResumeType.RESUME, errored=errored)  # type: ignore[arg-type]
        with _signal_handlers_kept():
            analysis = tune.run(
                trainable,
                name=experiment_folder,
                storage_path=storage_path,
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

    def best_result(self, results) -> Any:
        """The ``Result`` of ``results`` (a ``ResultGrid``) whose trial is the best, by the best finite value
        of the metric it reported at any epoch (`lightning_bohb.core.best_trial`, the rule ``status`` and the
        dashboard show), or ``None`` when no trial reported a finite value."""
        top = best_of(((result, best_value(_reported(result, self.metric), self.mode)) for result in results), self.mode)
        return top[0] if top else None

    def best_trial_config(self, results) -> Optional[Dict[str, Any]]:
        """The complete LightningCLI config of the best trial (`best_result`), or ``None`` if no trial reported
        a finite value."""
        best = self.best_result(results)
        if best is None or not best.config:
            return None
        try:
            return self.complete_config(best.config)
        except Exception as err:  # never lose the result of a finished search over how it is written
            logger.warning("The best config is written as merged, not completed by the parser: %s", err)
            return self._config_as_trials_run(best.config)

    def complete_config(self, values: Mapping[str, Any]) -> Dict[str, Any]:
        """The trial config for these sampled values as LightningCLI saves it: every default written out,
        class paths in full, the seed used; ``python main.py fit --config`` accepts it as is."""
        parser = self._parser_for_dump()
        complete = dump_config(parser, parser.parse_object(self._config_as_trials_run(values)))
        complete.pop("config", None)
        complete.update(self.fit_arguments)
        return complete

    def _config_as_trials_run(self, values: Mapping[str, Any]) -> Dict[str, Any]:
        """The trial's merged config with `FreshLoaderWorkers`, which every trial runs: it restarts persistent
        DataLoader workers each epoch, set in the config or in the DataModule's code alike (a no-op without)."""
        from lightning_bohb.callbacks.loader_workers import with_fresh_loader_workers

        return with_fresh_loader_workers(self.trial_spec().merged_config(values))

    def write_best_config(self, results, output_dir: Union[str, Path]) -> Optional[str]:
        """``best_config.yaml``: the best trial's complete config, after a comment with the command that
        reruns it exactly (its thread count, `lightning_bohb.core.rerun`)."""
        best = self.best_trial_config(results)
        if best is None:
            logger.warning("No trial reported %r; %s was not written.", self.metric, BEST_CONFIG_FILE)
            return None
        text = rerun_header(self.trial_threads()) + yaml.safe_dump(best, sort_keys=False)
        return write_at(output_dir, BEST_CONFIG_FILE, text)


@contextlib.contextmanager
def _signal_handlers_kept() -> Iterator[None]:
    """Put back the SIGINT/SIGUSR1 handlers `tune.run` replaces (it restores them only when a signal
    arrives): after the search, Ctrl+C is the caller's again."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    kept = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, getattr(signal, "SIGUSR1", None)) if signum is not None}
    try:
        yield
    finally:
        for signum, handler in kept.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


def _check_checkpoint_every(every: int, scheduler: Any) -> None:
    """A scheduler that pauses trials (HyperBand, BOHB) resumes them from their last checkpoint: one per epoch."""
    from ray.tune.schedulers import HyperBandScheduler

    if every > 1 and isinstance(scheduler, HyperBandScheduler):
        raise ConfigError(
            f"The value of `checkpoint_every` is {every}, but must be `1` with {type(scheduler).__name__}: it pauses "
            "trials between epochs and resumes them from their last checkpoint. Use `checkpoint_every: 1`, or a "
            "strategy whose scheduler stops trials (asha, random, optuna, hyperopt)."
        )


def _reported(result: Any, metric: str) -> list:
    """Every value of ``metric`` a trial's ``Result`` reported: its results file's column, else its last result."""
    frame = result.metrics_dataframe
    if frame is not None and metric in frame.columns:
        return frame[metric].tolist()
    return [(result.metrics or {}).get(metric)]
