"""What runs inside one trial: the user's LightningCLI builds model, datamodule and Trainer; then fit.

The trial's config is the base config with the sampled values at their paths, the trial's seed and
``max_epochs``, given to the user's `LightningCLI` (``run=False``) exactly as ``main.py fit --config``
would read it. LightningTune adds its callbacks to the Trainer (LightningCLI's persistent
callbacks, ``trainer_defaults``) and two settings: ``default_root_dir`` is the trial's folder in the
session (next to Tune's files for that trial), so the loggers the YAML configures write there and
move with the session; and ``enable_checkpointing`` stays on (the report callback is a Checkpoint).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Mapping, Optional

from lightning_bohb.core.base_config import apply_overrides
from lightning_bohb.core.lightning_cli import CLISpec
from lightning_bohb.core.worker_setup import quiet_trial_output
from lightning_bohb.utils.imports import extend_import_path
from lightning_bohb.utils.plain import to_plain

QUIET_TRAINER_DEFAULTS = {
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "logger": False,
}
"""Trainer settings that cost time or disk in every trial; they apply only where the YAML is silent
(``logger: true``, ``logger: null`` or a configured logger in the YAML turn logging on)."""

SEED_ENVIRONMENT = ("PL_GLOBAL_SEED", "PL_SEED_WORKERS")
"""What `seed_everything` leaves in the environment; a reused Ray worker would carry a previous
trial's values into the next, so each trial starts with the driver's."""


@dataclass
class TrialSpec:
    """Everything a trial needs besides its sampled values; picklable, sent once per trial."""

    base_config: Dict[str, Any]
    """The LightningCLI config as the user wrote it, without ``Trainer.fit`` arguments."""
    parameter_paths: Dict[str, str]
    max_epochs: int
    metric: str
    seed: Optional[int] = None
    """The seed every trial uses (``OptimizationConfig.seed``, else what ``seed_everything: true``
    means to LightningCLI); ``None`` leaves ``seed_everything`` as the config says."""
    control_name: Optional[str] = None
    control_key: Optional[str] = None
    """The session key (`lightning_bohb.pause.channel`): what a trial's acknowledgements carry."""
    check_interval: float = 1.0
    sys_path: List[str] = field(default_factory=list)
    """The driver's import path, so user classes the driver imports also import in trials."""
    cli: CLISpec = field(default_factory=CLISpec)
    fit_arguments: Dict[str, Any] = field(default_factory=dict)
    """``ckpt_path``/``weights_only`` from the YAML, for a trial's first start."""
    environment: Dict[str, Optional[str]] = field(default_factory=dict)
    """The driver's ``PL_GLOBAL_SEED``/``PL_SEED_WORKERS`` (``None``: unset)."""
    checkpoint_compression: Optional[str] = None
    checkpoint_every: int = 1
    ranks: int = 1
    threads: Optional[int] = None
    """The torch thread count of every rank (`lightning_bohb.core.rerun`); ``None``: as the worker has it."""
    """DDP ranks the trial runs (`core/distributed.py`): rank 0 is the trial, the others Ray actors."""

    def merged_config(self, values: Mapping[str, Any]) -> Dict[str, Any]:
        """The LightningCLI config of a trial with these sampled values (what its CLI parses)."""
        merged = apply_overrides(self.base_config, values, self.parameter_paths)
        if self.seed is not None:
            merged["seed_everything"] = self.seed
        trainer = merged.get("trainer")
        if not isinstance(trainer, dict):
            trainer = merged["trainer"] = {}
        trainer["max_epochs"] = self.max_epochs
        return merged

    def trial_config(self, values: Mapping[str, Any], trial_dir: str) -> Dict[str, Any]:
        """`merged_config` plus what every trial runs with: its folder, checkpointing on."""
        merged = self.merged_config(values)
        merged["trainer"]["default_root_dir"] = trial_dir
        merged["trainer"]["enable_checkpointing"] = True  # the report callback is a Checkpoint; Lightning refuses one otherwise
        return merged


def train_trial(config: Dict[str, Any], spec: TrialSpec) -> None:
    """Ray Tune function trainable: one Lightning fit, resumed from Tune's checkpoint when present."""
    from ray import tune

    from lightning_bohb.callbacks.tune_report_callback import readable_checkpoint
    from lightning_bohb.core.distributed import trial_ranks
    from lightning_bohb.core.trial_logs import continued_logs

    quiet_trial_output()
    extend_import_path(spec.sys_path, first=False)
    _restore_environment(spec.environment)
    use_threads(spec.threads)
    trial_dir = trial_folder()
    callbacks = trial_callbacks(spec)
    checkpoint = tune.get_checkpoint()
    with _working_directory(trial_dir), trial_ranks(spec) as ranks:
        trial_config = spec.trial_config(to_plain(config), trial_dir)
        if checkpoint is None:
            logs = continued_logs(trial_dir)  # the logger versions of an earlier start of this trial, if any
            cli = _build(spec, ranks.own_config(trial_config), callbacks, logs)
            with ranks.fitting(spec, trial_config, trial_dir, spec.fit_arguments):
                cli.trainer.fit(cli.model, datamodule=cli.datamodule, **spec.fit_arguments)
            return
        with checkpoint.as_directory() as checkpoint_dir, readable_checkpoint(checkpoint_dir) as path:
            # weights_only=True unless the YAML says otherwise: Lightning passes None on to torch, whose default may change.
            weights_only = spec.fit_arguments.get("weights_only", True)
            logs = continued_logs(trial_dir, path, weights_only)  # the loggers' runs as the checkpoint has them
            cli = _build(spec, ranks.own_config(trial_config), callbacks, logs)
            with ranks.fitting(spec, trial_config, trial_dir, {"ckpt_path": path, "weights_only": weights_only}):
                cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=path, weights_only=weights_only)


def _build(spec: TrialSpec, config: Mapping[str, Any], callbacks: List[Any], logs: Any) -> Any:
    """The trial's CLI built from ``config``, its loggers continuing the runs of ``logs`` (`continued_logs`)."""
    cli = spec.cli.build(logs.configure(config), callbacks, QUIET_TRAINER_DEFAULTS)
    logs.apply(cli.trainer)
    return cli


def trial_callbacks(spec: TrialSpec) -> List[Any]:
    """LightningTune's callbacks of a trial, the same on every rank (they meet in the same collectives)."""
    from lightning_bohb.callbacks import FreshLoaderWorkers, RNGStateCallback, TunePauseCallback, TuneReportCallback
    from lightning_bohb.callbacks.loader_position import LoaderPosition
    from lightning_bohb.core.trial_logs import TrialLogs
    from lightning_bohb.pause.channel import ControlClient

    control = ControlClient(spec.control_name, spec.control_key or "") if spec.control_name else None
    report = TuneReportCallback(spec.metric, spec.checkpoint_every, spec.checkpoint_compression)
    pause = TunePauseCallback(check_interval=spec.check_interval, control=control)
    pause.report, pause.loader_position = report, LoaderPosition()  # a pause with a deadline may checkpoint at a step
    return [
        TrialLogs(),  # records the loggers' state before the checkpoint is taken
        RNGStateCallback(),
        FreshLoaderWorkers(),  # persistent loader workers seeded per epoch from the restored RNG, as on resume
        pause.loader_position,  # the training loader's position within an epoch, for a step checkpoint
        report,  # reports the checkpoint before the pause callback holds
        pause,
    ]


def trial_folder() -> str:
    """The trial's folder in the session (Tune's trial folder on the storage), or Ray's working directory.

    Tune runs a trial in a local working directory under Ray's temporary folder, which is neither
    kept nor copied into the session; the storage folder is where the trial's checkpoints and results
    already live. Used when the storage is a local (or shared) filesystem, which sessions are.
    """
    from ray import tune

    try:
        storage = tune.get_context().get_storage()
        path = storage.trial_fs_path
        local = storage.storage_filesystem.type_name in ("local", "py::fsspec+('file', 'local')")
    except Exception:
        return os.getcwd()
    if not (local and os.path.isabs(path)):
        return os.getcwd()
    os.makedirs(path, exist_ok=True)
    return path


@contextlib.contextmanager
def _working_directory(path: str) -> Iterator[None]:
    """Run in the trial's folder, so relative paths in the config (a logger's ``save_dir: logs``,
    a ModelCheckpoint ``dirpath``) land inside it, as they would in a run's own folder. With
    ``RAY_CHDIR_TO_TRIAL_DIR=0`` (Ray's switch to keep the original working directory) nothing changes."""
    if os.environ.get("RAY_CHDIR_TO_TRIAL_DIR") == "0":
        yield
        return
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.chdir(previous)


def _restore_environment(environment: Mapping[str, Optional[str]]) -> None:
    for name in SEED_ENVIRONMENT:
        value = environment.get(name)
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def use_threads(threads: Optional[int]) -> None:
    """Train with ``threads`` torch threads, whatever ``OMP_NUM_THREADS`` this worker was started with."""
    if threads:
        import torch

        torch.set_num_threads(threads)


def seed_environment() -> Dict[str, Optional[str]]:
    """This process's ``PL_GLOBAL_SEED``/``PL_SEED_WORKERS``, for `TrialSpec.environment`."""
    return {name: os.environ.get(name) for name in SEED_ENVIRONMENT}
