"""`TrialLogs`: a trial's Lightning loggers continue the same run across pauses, each row once.

A resumed trial builds its loggers anew. Left alone, TensorBoard and CSV would open the next
``version_<n>``, MLflow and W&B a new run, and `CSVLogger` deletes the ``metrics.csv`` it finds.
And a pause falls in ``on_train_epoch_end``, before Lightning logs that epoch's training metrics
(``FitLoop.on_advance_end`` -> ``update_train_epoch_metrics``): that row would never be written.

So at each validated epoch end, before the checkpoint is reported, this callback records in the
checkpoint each logger's version (or run id), how many rows each CSV file holds, and the row
Lightning is about to log. `continued_logs` reads them back for the resumed trial: its config
constructs every logger it configures with its version or run id (`ContinuedLogs.configure`), and
before ``fit`` (`ContinuedLogs.apply`) any other logger is given it, the CSV rows the checkpoint covers
are kept (rows of an epoch lost to a crash go) and the pending row is logged. A restored trial can be
held again before it trains (a pause that arrives as it starts holds it at ``on_train_start``) and
resumed from the same checkpoint: CSV drops
and rewrites the row, but loggers that only append (TensorBoard, MLflow, W&B) would get it twice, so
the trial's record in ``default_root_dir`` (`RECORD_FILE`) notes which checkpoint's row they have.
A trial held before its first checkpoint starts over with no checkpoint: each start records its
loggers' versions there too, and `continued_logs` gives a new start the same ones, so no empty
``version_<n>`` is left behind. A checkpoint taken within an epoch (a pause at a
training step) records the loggers as they are then, with no row pending. The files read as those of
one uninterrupted run.
"""

from __future__ import annotations

import copy
import csv
import json
import os
import time
import warnings
from typing import Any, Dict, List, Mapping, Optional, Set

from typing_extensions import override

from lightning_bohb.callbacks.epoch_boundary import ValidatedEpochEnd
from lightning_bohb.utils.files import atomic_write

STATE_KEY = "TrialLogs"
METRICS_FILE = "metrics.csv"
RECORD_FILE = "trial_logs.json"
"""In the trial's ``default_root_dir``: ``{"loggers": [{"class", "version"}], "pending_logged": row}``,
the loggers' versions (run ids) of the trial's first start and the pending row (``{"step", "epoch"}``)
its append-only loggers have."""
RECORD_LIMIT = 64 * 1024


class TrialLogs(ValidatedEpochEnd):
    """Records what a resumed trial needs to continue its loggers (see the module docstring).

    Place it before `TuneReportCallback`, so that its state is in the checkpoint that callback reports.
    """

    def __init__(self) -> None:
        super().__init__()
        self._state: Dict[str, Any] = {"loggers": [], "pending": None}
        self._trainer: Any = None
        self._at_epoch_end = False  # True from a validated epoch end until the next epoch starts

    @override
    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self._trainer = trainer
        # The loggers' runs exist now (Lightning creates them before the callbacks' setup): record them for a start over.
        if stage == "fit" and trainer.loggers and trainer.is_global_zero:
            loggers = [{"class": type(logger).__name__, "version": _describe(logger, rows=False)["version"]} for logger in trainer.loggers]
            _update_record(trainer, loggers=loggers)

    @property
    @override
    def state_key(self) -> str:
        return STATE_KEY

    @override
    def on_validated_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        for logger in trainer.loggers:
            persist(logger)  # everything logged so far is on disk when the checkpoint says so
        self._state = {"loggers": [_describe(logger) for logger in trainer.loggers], "pending": pending_epoch_row(trainer)}
        self._at_epoch_end = True

    @override
    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._at_epoch_end = False  # Lightning logged the pending row before this epoch started

    @override
    def state_dict(self) -> Dict[str, Any]:
        trainer = self._trainer
        if self._at_epoch_end or trainer is None or not trainer.training:
            return dict(self._state)
        # A checkpoint within an epoch (a pause at a training step): the loggers as they are now, no row pending.
        for logger in trainer.loggers:
            persist(logger)
        return {"loggers": [_describe(logger) for logger in trainer.loggers], "pending": None}

    @override
    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        self._state = dict(state_dict)  # applied by `continued_logs` before fit; kept for the next checkpoint


def pending_epoch_row(trainer: Any) -> Optional[Dict[str, Any]]:
    """The training-epoch row Lightning logs right after the epoch-end hooks, as ``{"metrics", "step"}``.

    What `_LoggerConnector.update_train_epoch_metrics` passes to every logger (Lightning 2.6): the
    epoch-level values of the training `ResultCollection`, ``epoch`` added, at the last step of the
    epoch. Reads Lightning privates (``trainer._logger_connector``, ``_batches_that_stepped``);
    ``tests/unit/test_trial_logs.py`` checks the row against the one Lightning writes.
    """
    if not trainer.loggers:
        return None
    from lightning.fabric.utilities.apply_func import convert_tensors_to_scalars

    try:
        metrics = convert_tensors_to_scalars(dict(trainer._logger_connector.metrics["log"]))
        step = metrics.pop("step", None)
        if step is None:
            metrics.setdefault("epoch", trainer.current_epoch)
            step = trainer.fit_loop.epoch_loop._batches_that_stepped - 1
    except Exception:  # never let log bookkeeping fail a trial
        return None
    if not metrics:
        return None
    return {"metrics": {str(k): _plain(v) for k, v in metrics.items()}, "step": int(step)}


def continued_logs(trial_dir: str, checkpoint_path: Optional[str] = None, weights_only: bool = True) -> "ContinuedLogs":
    """What a trial's loggers continue: the run that saved ``checkpoint_path`` (read with the ``weights_only``
    its ``fit`` uses), or with no checkpoint the runs of an earlier start recorded in ``trial_dir``."""
    if checkpoint_path is not None:
        state = saved_state(checkpoint_path, weights_only) or {}
        pending = state.get("pending")
        return ContinuedLogs(list(state.get("loggers") or []), None, pending if isinstance(pending, dict) else None)
    loggers = _read_record(trial_dir).get("loggers")
    if not (isinstance(loggers, list) and all(isinstance(entry, dict) for entry in loggers)):
        loggers = []
    return ContinuedLogs(list(loggers), 0, None, start=True)


class ContinuedLogs:
    """The loggers' runs a trial continues, by position: `configure` passes each run's identity to the
    logger the trial config constructs, `apply` (before ``trainer.fit``) gives it to any other logger,
    keeps the CSV rows the checkpoint covers (``csv_rows`` of each; all of them dropped, 0, for a start
    over) and logs the checkpoint's pending row."""

    def __init__(self, saved: List[Dict[str, Any]], csv_rows: Optional[int], pending: Optional[Dict[str, Any]], start: bool = False):
        self.saved, self.csv_rows, self.pending, self.start = saved, csv_rows, pending, start
        self.constructed: Set[int] = set()  # positions whose logger the config constructs with its run's identity

    def configure(self, config: Mapping[str, Any]) -> Dict[str, Any]:
        """``config`` (a trial's LightningCLI config) with each saved run's identity among the arguments of
        the logger it configures at that position (same class only)."""
        configured: Dict[str, Any] = copy.deepcopy(dict(config))
        trainer = configured.get("trainer")
        loggers = trainer.get("logger") if isinstance(trainer, dict) else None
        entries = loggers if isinstance(loggers, list) else [loggers]
        for index, entry in enumerate(entries):
            record = self.saved[index] if index < len(self.saved) else {}
            version = _saved_version(record)
            if version is None or not (isinstance(entry, dict) and isinstance(entry.get("class_path"), str)):
                continue
            cls = _logger_class(entry["class_path"])
            if cls is None or cls.__name__ != record.get("class"):
                continue
            init_args = entry.get("init_args")
            init_args = dict(init_args) if isinstance(init_args, dict) else {}
            extra = entry.get("dict_kwargs")
            arguments = _identity_arguments(cls, version, init_args, extra if isinstance(extra, dict) else {})
            if arguments is not None:
                entry["init_args"] = {**init_args, **arguments}
                self.constructed.add(index)
        return configured

    def apply(self, trainer: Any) -> None:
        """Give the runs' identities to the loggers `configure` did not construct, reopen the CSV files and
        log the pending row (each once: an earlier start from the same checkpoint may have logged it)."""
        _anchor_mlflow(trainer.loggers)
        _continue(trainer.loggers, self.saved, self.csv_rows, self.constructed)
        if self.start:
            if _read_record(trainer.default_root_dir).get("pending_logged") is not None:
                _update_record(trainer, pending_logged=None)  # the trial starts over: no checkpoint's row is logged
            return
        pending = self.pending
        if not (pending and pending.get("metrics")):
            return
        row = {"step": int(pending["step"]), "epoch": pending["metrics"].get("epoch")}
        logged = _read_record(trainer.default_root_dir).get("pending_logged") == row
        for logger in _creation_order(trainer.loggers):
            if logged and not _is_csv(logger):
                continue  # logged by an earlier start from this checkpoint (held before it trained); CSV rewound it
            logger.log_metrics(dict(pending["metrics"]), step=row["step"])
            persist(logger)
        _update_record(trainer, pending_logged=row)


def _saved_version(record: Dict[str, Any]) -> Optional[Any]:
    """The version or run id a logger's saved record holds, if it is one."""
    version = record.get("version")
    return None if isinstance(version, bool) or not isinstance(version, (int, str)) else version


def _logger_class(class_path: str) -> Optional[type]:
    """The class a config's ``class_path`` names: a dotted path, or a Lightning logger's name, as LightningCLI reads it."""
    import importlib

    module, _, name = class_path.rpartition(".")
    try:
        found = getattr(importlib.import_module(module or "lightning.pytorch.loggers"), name, None)
    except ImportError:
        return None
    return found if isinstance(found, type) else None


def _identity_arguments(cls: type, version: Any, init_args: Dict[str, Any], extra: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The ``init_args`` that make a ``cls`` logger continue the run ``version`` (its config's ``init_args`` and
    ``dict_kwargs``, LightningCLI's arguments for ``**kwargs``, as they are); None when it takes none.

    TensorBoard and CSV: ``version`` (a TensorBoard run continued also logs no second placeholder
    ``hp_metric`` at step 0, and opens a new events file whose name cannot be the previous one's: names
    carry the time in whole seconds, and a writer opening the same name would truncate the file);
    MLflow: ``run_id`` (the run reopened); W&B: ``id``, which it resumes (its ``resume="allow"``).
    """
    import inspect

    from lightning.fabric.loggers import CSVLogger, TensorBoardLogger
    from lightning.pytorch.loggers import MLFlowLogger, WandbLogger
    from lightning.pytorch.loggers import TensorBoardLogger as TrainerTensorBoardLogger

    arguments: Dict[str, Any]
    if issubclass(cls, WandbLogger):
        if "resume" in init_args or "resume" in extra:
            return None  # the config's own `resume`: replaced by "allow" after construction (`restore_identity`)
        arguments = {"id": version}
    elif issubclass(cls, MLFlowLogger):
        arguments = {"run_id": version}
    elif issubclass(cls, (CSVLogger, TensorBoardLogger)):
        arguments = {"version": version}
    else:
        return None
    if not all(name in inspect.signature(cls).parameters for name in arguments):
        return None
    if issubclass(cls, TrainerTensorBoardLogger):
        if "filename_suffix" in extra:
            return None  # a SummaryWriter argument LightningCLI would be given twice: set after construction
        # LightningCLI takes the SummaryWriter's arguments (TensorBoardLogger's **kwargs) among its init_args.
        suffix = f"{init_args.get('filename_suffix') or ''}.resumed{time.time_ns()}"
        arguments.update(default_hp_metric=False, filename_suffix=suffix)
    return arguments


def _read_record(trial_dir: str) -> Dict[str, Any]:
    """The trial's record (`RECORD_FILE`), ``{}`` when missing, too big or not a JSON object."""
    try:
        with open(os.path.join(trial_dir, RECORD_FILE), "rb") as handle:
            data = handle.read(RECORD_LIMIT + 1)
        record = json.loads(data) if len(data) <= RECORD_LIMIT else None
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _update_record(trainer: Any, **fields: Any) -> None:
    """Set ``fields`` in the trial's record (rank zero only; replaced atomically)."""
    if not trainer.is_global_zero:
        return
    try:
        atomic_write(os.path.join(trainer.default_root_dir, RECORD_FILE), json.dumps({**_read_record(trainer.default_root_dir), **fields}))
    except (OSError, TypeError, ValueError):  # never let log bookkeeping fail a trial
        return


def _continue(loggers: List[Any], saved: List[Dict[str, Any]], csv_rows: Optional[int], constructed: Set[int]) -> None:
    """Give each logger the identity saved for its position (same class only), unless it was ``constructed``
    with it; CSV keeps ``csv_rows`` rows, or the count saved with it when ``None``."""
    loggers = list(loggers)
    for index in sorted(range(len(loggers)), key=lambda i: type(loggers[i]).__name__ != "WandbLogger"):
        logger = loggers[index]
        record = saved[index] if index < len(saved) else {}
        version = _saved_version(record)
        if version is None or record.get("class") != type(logger).__name__:
            continue
        if index not in constructed:
            # Built where no constructor argument of the config reaches it (Lightning's default logger of
            # ``logger: true``, a logger the user's CLI or code makes): given the run's identity afterwards.
            restore_identity(logger, version)
            if type(logger).__name__ == "TensorBoardLogger":
                _continue_tensorboard(logger)
        if _is_csv(logger):
            _reopen_csv(logger, record.get("csv_rows") if csv_rows is None else csv_rows)


def _anchor_mlflow(loggers: Any) -> None:
    """Make an MLFlowLogger's relative file store (``file:./mlruns``, Lightning's default) absolute in the
    trial's folder (the working directory). MLflow caches one store per tracking URI per process and a
    file store keeps its relative root: in a reused Ray worker the next trial would get the previous
    trial's store, whose folder is not in its own working directory."""
    for logger in loggers:
        uri = getattr(logger, "_tracking_uri", None)
        if type(logger).__name__ != "MLFlowLogger" or getattr(logger, "_initialized", True) or not isinstance(uri, str):
            continue
        path = uri[len("file:") :] if uri.startswith("file:") else "/"  # other stores are left as they are
        if os.path.isabs(path):
            continue
        from mlflow.tracking import MlflowClient

        logger._tracking_uri = "file:" + os.path.abspath(path)  # not percent-encoded: Lightning's `save_dir` is the rest
        logger._mlflow_client = MlflowClient(logger._tracking_uri)


def _creation_order(loggers: Any) -> List[Any]:
    """Lightning creates W&B's run first (wandb.init before any TensorBoard writer): the same order here
    (as in `_continue`)."""
    return sorted(loggers, key=lambda logger: type(logger).__name__ != "WandbLogger")


def persist(logger: Any) -> None:
    """Put everything ``logger`` was given on disk now (a held trial's process is ended, not closed).

    ``save()`` does for most loggers. tensorboardX's ``flush()`` does not: its writer thread takes events
    from a queue and ``flush()`` only flushes what the thread has written so far, so the last rows (an
    epoch's validation row, the pending row) may still be queued and vanish with the process. Stopping
    the thread (its stop signal queues after every event) and starting a new one writes them all.
    """
    logger.save()
    experiment = getattr(logger, "_experiment", None)  # only a writer already opened
    events = getattr(getattr(experiment, "file_writer", None), "event_writer", None)
    worker: Any = getattr(events, "_worker", None)
    if events is None or getattr(events, "_closed", True) or not callable(getattr(worker, "stop", None)):
        return  # not tensorboardX (torch's writer flushes its queue), or closed
    try:
        worker.stop()
        events._worker = type(worker)(events._event_queue, events._ev_writer, events._flush_secs)
        events._worker.start()
        events.flush()
    except Exception:  # never let log bookkeeping fail a trial
        return


def saved_state(checkpoint_path: str, weights_only: bool = True) -> Optional[Dict[str, Any]]:
    """This callback's state in a Lightning checkpoint, read without loading the weights (mmap).

    Loaded as Lightning loads it next (``weights_only`` True unless the user's YAML says otherwise):
    a checkpoint is never unpickled here in a way the fit would refuse.
    """
    import torch

    checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=weights_only, mmap=True)
    return (checkpoint.get("callbacks") or {}).get(STATE_KEY)


def restore_identity(logger: Any, version: Any) -> None:
    """Give a new logger the version (TensorBoard, CSV) or run id (MLflow, W&B) of the saved run.

    Through its private attributes, for a logger already built when its run is known: one the trial config
    does not construct (`ContinuedLogs.configure` passes the run to the constructor of those it does).
    """
    if version is None:
        return
    if isinstance(getattr(logger, "_wandb_init", None), dict):  # WandbLogger: wandb.init(id=..., resume="allow")
        logger._id = version
        logger._wandb_init["id"] = version
        logger._wandb_init["resume"] = "allow"
    elif hasattr(logger, "_run_id"):  # MLFlowLogger: an existing run is reopened by id
        logger._run_id = version
    elif hasattr(logger, "_version"):  # TensorBoardLogger, CSVLogger and loggers built like them
        logger._version = version


def _continue_tensorboard(logger: Any) -> None:
    """A TensorBoard run continued after the logger was built (`restore_identity`; `_identity_arguments` for
    one the config constructs): no second placeholder ``hp_metric`` at step 0, and a new events file whose
    name cannot be the previous one's (names carry the time in whole seconds; a writer opening the same
    name would truncate the file)."""
    if hasattr(logger, "_default_hp_metric"):
        logger._default_hp_metric = False
    kwargs = getattr(logger, "_kwargs", None)  # what Lightning passes to the SummaryWriter
    if isinstance(kwargs, dict):
        kwargs["filename_suffix"] = f"{kwargs.get('filename_suffix') or ''}.resumed{time.time_ns()}"


def _describe(logger: Any, rows: bool = True) -> Dict[str, Any]:
    record: Dict[str, Any] = {"class": type(logger).__name__, "version": None}
    try:
        version = logger.version
    except Exception:
        version = None
    if isinstance(version, (int, str)) and not isinstance(version, bool):
        record["version"] = version
    if rows and _is_csv(logger):
        record["csv_rows"] = _csv_rows(os.path.join(logger.log_dir, METRICS_FILE))
    return record


def _is_csv(logger: Any) -> bool:
    from lightning.fabric.loggers.csv_logs import CSVLogger

    return isinstance(logger, CSVLogger)


def _csv_rows(path: str) -> Optional[int]:
    if not os.path.isfile(path):
        return None
    with open(path, newline="") as handle:
        return max(sum(1 for _ in handle) - 1, 0)


def _reopen_csv(logger: Any, rows: Optional[int]) -> None:
    """Open the CSV logger's writer on its existing ``metrics.csv``, which the writer would delete.

    Keeps the header and the first ``rows`` rows (all when unknown; none, no header, for 0); the writer
    appends after them.
    """
    path = os.path.join(logger.log_dir, METRICS_FILE)
    kept: List[str] = []
    if os.path.isfile(path):
        with open(path, newline="") as handle:
            kept = handle.readlines()
        if rows is not None:
            kept = kept[: 1 + rows] if rows > 0 else []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Experiment logs directory.*exists and is not empty.*")
        writer = logger.experiment  # the writer removes metrics.csv here
    if kept:
        with open(path, "w", newline="") as handle:
            handle.writelines(kept)
        writer.metrics_keys = next(csv.reader([kept[0]]))


def _plain(value: Any) -> Any:
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)
