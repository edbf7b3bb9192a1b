"""`TrialLogs`: a trial paused (or crashed) and resumed writes the logs an uninterrupted trial writes.

Real Trainers with CSV and TensorBoard loggers, no Ray: a callback saves a checkpoint at each
validated epoch end (as `TuneReportCallback` does) and ends the run by raising, where a paused trial's
process ends; the next run resumes from that checkpoint through `continued_logs`, as `train_trial` does,
its loggers constructed by the test (as Lightning's default logger is: given their runs afterwards) or,
``from_config``, from a trial config's ``trainer.logger`` (as LightningCLI does: their runs passed to
their constructors).
"""

import importlib
import struct
from pathlib import Path

import lightning.pytorch as pl
import pytest
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from lbohb_cli_helpers import TinyData, TinyModel
from lightning_bohb.callbacks import RNGStateCallback
from lightning_bohb.callbacks.epoch_boundary import ValidatedEpochEnd
from lightning_bohb.core.trial_logs import TrialLogs, continued_logs, pending_epoch_row, restore_identity


class Stop(Exception):
    """Where a paused trial's process ends."""


class SaveEachEpoch(ValidatedEpochEnd):
    """Saves ``epoch_<n>.ckpt`` at each validated epoch end; raises after epoch ``stop_after``, or in
    epoch ``crash_in`` after its third batch (a crash between checkpoints), or in epoch ``step_pause_in``
    after saving ``step.ckpt`` there (a pause at a training step)."""

    def __init__(self, folder: Path, stop_after=None, crash_in=None, step_pause_in=None):
        super().__init__()
        self.folder, self.stop_after, self.crash_in, self.step_pause_in = folder, stop_after, crash_in, step_pause_in
        self.pending = []

    def on_validated_epoch_end(self, trainer, pl_module):
        self.pending.append(pending_epoch_row(trainer))
        trainer.save_checkpoint(self.folder / f"epoch_{trainer.current_epoch}.ckpt")
        if trainer.current_epoch == self.stop_after:
            raise Stop

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.current_epoch == self.step_pause_in and batch_idx == 2:
            trainer.save_checkpoint(self.folder / "step.ckpt")
            raise Stop
        if trainer.current_epoch == self.crash_in and batch_idx == 2:
            raise Stop


class HoldAtStart(Checkpoint):
    """Where `TunePauseCallback` holds a trial that starts while a pause is pending (``on_train_start``,
    after `TrialLogs`); the held process ends there."""

    def on_train_start(self, trainer, pl_module):
        raise Stop


LOGGER_CLASSES = ["lightning.pytorch.loggers.CSVLogger", "lightning.pytorch.loggers.TensorBoardLogger"]


def built_loggers(root: Path, logs, from_config: bool):
    if not from_config:
        return [CSVLogger(root / "logs"), TensorBoardLogger(root / "logs")]
    entries = [{"class_path": path, "init_args": {"save_dir": str(root / "logs")}} for path in LOGGER_CLASSES]
    config = logs.configure({"trainer": {"logger": entries}})
    loggers = []
    for entry in config["trainer"]["logger"]:  # what LightningCLI constructs from the config
        module, _, name = entry["class_path"].rpartition(".")
        loggers.append(getattr(importlib.import_module(module), name)(**entry["init_args"]))
    return loggers


def fit(root: Path, checkpoint=None, hold_at_start=False, from_config=False, **stop):
    """One process of a trial, as `train_trial` runs it: `continued_logs` of its checkpoint, or of its folder."""
    pl.seed_everything(1, workers=True, verbose=False)
    saver = SaveEachEpoch(root, **stop)
    logs = continued_logs(str(root), None if checkpoint is None else str(checkpoint))
    loggers = built_loggers(root, logs, from_config)
    trainer = pl.Trainer(
        max_epochs=4,
        default_root_dir=root,
        logger=loggers,
        callbacks=[TrialLogs(), RNGStateCallback(), saver, *([HoldAtStart()] if hold_at_start else [])],
        log_every_n_steps=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        deterministic=True,
    )
    logs.apply(trainer)
    try:
        trainer.fit(TinyModel(), datamodule=TinyData(), ckpt_path=checkpoint)
    except Stop:
        pass
    return saver


def scalars(folder: Path):
    from tensorboardX.proto.event_pb2 import Event

    found = []
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data, position = path.read_bytes(), 0
        while position < len(data):
            (length,) = struct.unpack("<Q", data[position : position + 8])
            event = Event.FromString(data[position + 12 : position + 12 + length])
            position += 12 + length + 4
            found += [(v.tag, event.step, v.simple_value) for v in event.summary.value if v.HasField("simple_value")]
    return found


def logs(root: Path):
    versions = sorted((root / "logs" / "lightning_logs").iterdir())
    assert [v.name for v in versions] == ["version_0", "version_1"]  # CSV, TensorBoard: never a new version
    return (versions[0] / "metrics.csv").read_text(), scalars(versions[1])


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    root = tmp_path_factory.mktemp("uninterrupted")
    saver = fit(root)
    return logs(root), saver.pending


def test_the_pending_row_is_the_row_lightning_logs_next(uninterrupted):
    (text, _), pending = uninterrupted
    rows = text.splitlines()
    header = rows[0].split(",")
    train_rows = [dict(zip(header, row.split(","), strict=True)) for row in rows[1:] if row.split(",")[header.index("train_loss_epoch")]]
    assert len(pending) == len(train_rows) == 4
    for row, expected in zip(pending, train_rows, strict=True):
        assert row["step"] == int(expected["step"]) and row["metrics"]["epoch"] == int(expected["epoch"])
        assert repr(row["metrics"]["train_loss_epoch"]) == expected["train_loss_epoch"]


@pytest.mark.parametrize("from_config", [False, True])
def test_paused_twice_the_logs_are_those_of_one_run(tmp_path, uninterrupted, from_config):
    (expected_csv, expected_scalars), _ = uninterrupted
    fit(tmp_path, stop_after=0, from_config=from_config)
    fit(tmp_path, tmp_path / "epoch_0.ckpt", stop_after=2, from_config=from_config)
    fit(tmp_path, tmp_path / "epoch_2.ckpt", from_config=from_config)
    csv_text, found = logs(tmp_path)
    assert csv_text == expected_csv  # each row once, in order, the paused epochs' training rows included
    assert found == expected_scalars  # every scalar once, same steps and values


@pytest.mark.parametrize("from_config", [False, True])
def test_restored_then_held_before_its_first_epoch_the_pending_row_is_logged_once(tmp_path, uninterrupted, from_config):
    """A pause that arrives while a restored trial starts holds it at ``on_train_start``, after the
    pending training row of its checkpoint was logged: the next start from that checkpoint rewrites it
    in the CSV file (which it rewinds) and not in TensorBoard (append-only)."""
    expected, _ = uninterrupted
    fit(tmp_path, stop_after=0, from_config=from_config)
    fit(tmp_path, tmp_path / "epoch_0.ckpt", hold_at_start=True, from_config=from_config)
    fit(tmp_path, tmp_path / "epoch_0.ckpt", hold_at_start=True, from_config=from_config)
    fit(tmp_path, tmp_path / "epoch_0.ckpt", from_config=from_config)
    assert logs(tmp_path) == expected  # TensorBoard: no step of the pending row twice; CSV unchanged


def test_held_at_its_last_epoch_end_the_resume_logs_the_last_row(tmp_path, uninterrupted):
    """Resumed with nothing left to train, Lightning runs no training hook: the row is logged anyway."""
    expected, _ = uninterrupted
    fit(tmp_path, stop_after=3)
    fit(tmp_path, tmp_path / "epoch_3.ckpt", hold_at_start=True)  # never held: on_train_start does not run
    assert logs(tmp_path) == expected


@pytest.mark.parametrize("from_config", [False, True])
def test_held_before_its_first_checkpoint_a_trial_keeps_one_logger_version(tmp_path, uninterrupted, from_config):
    """A trial held at ``on_train_start`` with no checkpoint starts over; its loggers take the versions its
    first start chose (recorded in ``default_root_dir``), not new ones next to empty folders."""
    expected, _ = uninterrupted
    fit(tmp_path, hold_at_start=True, from_config=from_config)
    fit(tmp_path, hold_at_start=True, from_config=from_config)
    fit(tmp_path, from_config=from_config)
    assert logs(tmp_path) == expected  # `logs` checks: version_0 (CSV) and version_1 (TensorBoard), no other


def test_resumed_from_a_step_checkpoint_no_row_is_logged_twice_or_dropped(tmp_path):
    """A checkpoint taken at a training step (a pause with a deadline) records the loggers as they are
    then: the previous epoch's training row, logged long before, is not pending any more."""
    fit(tmp_path, step_pause_in=1)
    logged_before = logs(tmp_path)[0].splitlines()
    fit(tmp_path, tmp_path / "step.ckpt")
    text, found = logs(tmp_path)
    rows = text.splitlines()
    assert rows[: len(logged_before)] == logged_before  # what the step checkpoint covered is kept
    header = rows[0].split(",")
    epochs = [row.split(",")[header.index("epoch")] for row in rows[1:] if row.split(",")[header.index("train_loss_epoch")]]
    assert epochs == ["0", "1", "2", "3"]  # each epoch's training row once
    steps = [(tag, step) for tag, step, _ in found if tag != "epoch"]
    assert len(steps) == len(set(steps))


def test_after_a_crash_the_csv_keeps_what_the_checkpoint_covers(tmp_path, uninterrupted):
    (expected_csv, _), _ = uninterrupted
    fit(tmp_path, crash_in=2)  # epoch 2 logged some steps after the epoch-1 checkpoint, then died
    assert len(logs(tmp_path)[0].splitlines()) > len(expected_csv.splitlines()) // 2
    fit(tmp_path, tmp_path / "epoch_1.ckpt")
    assert logs(tmp_path)[0] == expected_csv


class FakeWandb:
    def __init__(self):
        self._id, self._wandb_init = None, {"id": None, "resume": "allow"}


class FakeMLflow:
    _run_id = None
    _version = "not-this"


class FakeVersioned:
    _version = None


def test_run_ids_and_versions_are_given_back():
    wandb, mlflow, versioned = FakeWandb(), FakeMLflow(), FakeVersioned()
    restore_identity(wandb, "run-7")
    restore_identity(mlflow, "a1b2")
    restore_identity(versioned, 3)
    assert wandb._id == "run-7" and wandb._wandb_init == {"id": "run-7", "resume": "allow"}
    assert mlflow._run_id == "a1b2" and mlflow._version == "not-this"
    assert versioned._version == 3
    restore_identity(versioned, None)  # nothing recorded: left to the logger
    assert versioned._version == 3


def test_the_config_constructs_each_logger_with_its_saved_run():
    """Each logger a trial config constructs is given its run by its own constructor argument (same class at
    the same position only); a class that takes none is left to `ContinuedLogs.apply`."""
    from typing import Optional

    from jsonargparse import ArgumentParser
    from lightning.pytorch.loggers import Logger

    from lightning_bohb.core.trial_logs import ContinuedLogs

    saved = [
        {"class": "TensorBoardLogger", "version": 2},
        {"class": "CSVLogger", "version": 0},
        {"class": "MLFlowLogger", "version": "a1b2"},
        {"class": "WandbLogger", "version": "run-7"},
        {"class": "CSVLogger", "version": 5},  # another class is configured here now: not this run
        {"class": "Logger", "version": 1},  # Lightning's abstract base: no argument to give its run
        {"class": "TensorBoardLogger", "version": None},  # nothing recorded
    ]
    paths = ["TensorBoardLogger", "lightning.pytorch.loggers.CSVLogger", "MLFlowLogger", "WandbLogger", "TensorBoardLogger"]
    paths += ["lightning.pytorch.loggers.logger.Logger", "TensorBoardLogger"]
    entries = [{"class_path": path, "init_args": {"save_dir": "logs"}} for path in paths]
    entries[0]["init_args"]["filename_suffix"] = ".mine"
    logs = ContinuedLogs(saved, None, None)
    config = logs.configure({"trainer": {"logger": entries}, "model": {"class_path": "M"}})
    args = [entry["init_args"] for entry in config["trainer"]["logger"]]
    assert args[0]["version"] == 2 and args[0]["default_hp_metric"] is False and args[0]["filename_suffix"].startswith(".mine.resumed")
    assert args[1] == {"save_dir": "logs", "version": 0}
    assert args[2] == {"save_dir": "logs", "run_id": "a1b2"}
    assert args[3] == {"save_dir": "logs", "id": "run-7"}  # which WandbLogger resumes (resume="allow")
    assert args[4:] == [{"save_dir": "logs"}] * 3
    assert logs.constructed == {0, 1, 2, 3}
    assert entries[1]["init_args"] == {"save_dir": "logs"}  # the trial config itself is left as it was
    one = ContinuedLogs(saved[1:2], None, None).configure({"trainer": {"logger": {"class_path": "CSVLogger"}}})
    assert one["trainer"]["logger"]["init_args"] == {"version": 0}
    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--logger", type=Optional[Logger])
    for entry in config["trainer"]["logger"][:4]:  # LightningCLI's parser takes each as it is
        parser.parse_object({"logger": entry})
    # The config's own W&B `resume` or SummaryWriter `filename_suffix` among LightningCLI's `dict_kwargs`: set afterwards.
    kept = [
        {"class_path": "WandbLogger", "init_args": {"resume": "must"}},
        {"class_path": "TensorBoardLogger", "dict_kwargs": {"filename_suffix": ".x"}},
    ]
    own = ContinuedLogs([saved[3], saved[0]], None, None)
    assert own.configure({"trainer": {"logger": kept}})["trainer"]["logger"] == kept and not own.constructed


def test_persist_puts_queued_tensorboard_events_on_disk_before_the_process_ends(tmp_path):
    """A held trial's process is ended (``os._exit``), never closed: what `persist` was given is on disk.

    tensorboardX's own ``flush()`` leaves the events its writer thread has not taken yet in its queue.
    """
    import subprocess
    import sys

    script = f"""
import os
from lightning.pytorch.loggers import TensorBoardLogger
from lightning_bohb.core.trial_logs import persist
logger = TensorBoardLogger({str(tmp_path)!r}, name="run")
for step in range(50):
    logger.log_metrics({{"loss": float(step)}}, step=step)
persist(logger)
logger.log_metrics({{"loss": 99.0}}, step=99)
persist(logger)
os._exit(0)
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    (run,) = (tmp_path / "run").glob("version_*")
    assert [step for _, step, _ in scalars(run)] == [*range(50), 99]
