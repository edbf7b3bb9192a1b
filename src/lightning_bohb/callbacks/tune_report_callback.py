"""`TuneReportCallback`: after each validated epoch, report every logged metric and a checkpoint to Tune."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from typing import Any, Dict, Iterator, Optional, Tuple

import lightning.pytorch as pl

from lightning_bohb.callbacks.epoch_boundary import ValidatedEpochEnd
from lightning_bohb.exceptions import LightningTuneError

CHECKPOINT_FILE = "checkpoint.ckpt"
COMPRESSED_CHECKPOINT_FILE = CHECKPOINT_FILE + ".zst"
"""`CHECKPOINT_FILE` compressed with zstd (``checkpoint_compression="zstd"``): a standard zstd stream."""


class MetricNotLoggedError(LightningTuneError):
    """The metric the search optimizes was never logged by the model."""


class TuneReportCallback(ValidatedEpochEnd):
    """Reports ``trainer.callback_metrics`` plus ``epoch`` and ``global_step`` with a Lightning checkpoint.

    Args:
        metric: The metric the search optimizes; a validated epoch without it fails the trial.
        checkpoint_every: Report a checkpoint every this many validated epochs, at the last epoch
            and when the trial is about to pause (other epochs report metrics only).
        compression: ``"zstd"`` to compress the checkpoint file, or ``None``.
    """

    def __init__(self, metric: str, checkpoint_every: int = 1, compression: Optional[str] = None) -> None:
        super().__init__()
        self.metric = metric
        self.checkpoint_every = checkpoint_every
        self.compression = compression

    def on_validated_epoch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        from ray import tune

        metrics = self.collect_metrics(trainer)
        if not self.checkpoint_due(trainer):
            if trainer.is_global_zero:
                tune.report(metrics)
            return
        with checkpoint_staging(trainer) as (folder, filesystem):
            save_checkpoint_folder(trainer, folder, self.compression)
            if trainer.is_global_zero:
                tune.report(metrics, checkpoint=tune.Checkpoint(folder, filesystem=filesystem))

    def report_step_checkpoint(self, trainer: "pl.Trainer", metrics: Dict[str, Any]) -> None:
        """Report a checkpoint taken at a training step (`TunePauseCallback`, a pause with a deadline),
        written like an epoch's; ``metrics`` mark it as no epoch result."""
        from ray import tune

        with checkpoint_staging(trainer) as (folder, filesystem):
            save_checkpoint_folder(trainer, folder, self.compression)
            if trainer.is_global_zero:
                tune.report(metrics, checkpoint=tune.Checkpoint(folder, filesystem=filesystem))

    def checkpoint_due(self, trainer: "pl.Trainer") -> bool:
        """Whether this validated epoch writes a checkpoint: every k-th, the last, or where the trial pauses.

        The pause decision is taken here, once, and kept for `TunePauseCallback` (which runs next), so
        a pause requested between the two callbacks cannot hold a trial whose epoch has no checkpoint.
        """
        from lightning_bohb.callbacks.tune_pause_callback import TunePauseCallback

        if self.checkpoint_every <= 1:
            return True
        epoch = trainer.current_epoch + 1
        if epoch % self.checkpoint_every == 0 or trainer.should_stop:
            return True
        if trainer.max_epochs is not None and trainer.max_epochs >= 0 and epoch >= trainer.max_epochs:
            return True
        pause = next((c for c in trainer.callbacks if isinstance(c, TunePauseCallback)), None)  # type: ignore[attr-defined]
        return pause is not None and pause.decide_pause(trainer)

    def collect_metrics(self, trainer: "pl.Trainer") -> Dict[str, Any]:
        metrics = {name: _scalar(value) for name, value in trainer.callback_metrics.items()}
        if self.metric not in metrics:
            raise MetricNotLoggedError(
                f"The search optimizes {self.metric!r}, but the model never logged it at validation end. "
                f"Logged metrics: {sorted(metrics) or 'none'}. Log it with `self.log({self.metric!r}, value)` "
                "in `validation_step`, or change `get_metric_config()`."
            )
        metrics["epoch"] = trainer.current_epoch
        metrics["global_step"] = trainer.global_step
        return metrics


def _scalar(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


# --- checkpoint_every and checkpoint_compression (issue 15) ---

def save_checkpoint_folder(trainer: "pl.Trainer", folder: str, compression: Optional[str] = None) -> str:
    """Write the trainer's checkpoint into ``folder`` (what Tune then uploads); returns the file written.

    With ``compression="zstd"`` the file is `COMPRESSED_CHECKPOINT_FILE`, compressed with pyarrow's
    zstd codec after Lightning wrote it (any strategy's single-file checkpoint).
    """
    path = os.path.join(folder, CHECKPOINT_FILE)
    trainer.save_checkpoint(path)
    if compression is None or not trainer.is_global_zero or not os.path.isfile(path):
        return path
    import pyarrow as pa

    compressed = os.path.join(folder, COMPRESSED_CHECKPOINT_FILE)
    with pa.OSFile(path, "rb") as source, pa.CompressedOutputStream(compressed, compression) as target:
        while chunk := source.read(_CHUNK):
            target.write(chunk)
    os.unlink(path)
    return compressed


_CHUNK = 16 * 2**20


@contextlib.contextmanager
def checkpoint_staging(trainer: "pl.Trainer") -> Iterator[Tuple[str, Any]]:
    """``(folder, filesystem)`` to write a trial checkpoint in, for ``tune.Checkpoint(folder, filesystem)``.

    In a single-process trial whose session filesystem is LightningTune's atomic one, the folder is
    the trial's `STAGING_FOLDER`, inside the session, and Tune's upload hard-links the file into the
    checkpoint folder (one write, one fsync: see `lightning_bohb._ray.atomic_fs`); otherwise a
    temporary folder, which Tune's upload copies. Either is deleted on exit.
    """
    from lightning_bohb.utils.files import STAGING_FOLDER, make_private_dir

    storage = None
    if trainer.world_size == 1:
        from ray import tune

        with contextlib.suppress(Exception):  # outside a Tune trial
            storage = tune.get_context().get_storage()
    if storage is None or not _links_staged_files(storage.storage_filesystem) or not os.path.isabs(storage.trial_fs_path):
        with tempfile.TemporaryDirectory(prefix="lightning_bohb_ckpt_") as tmp:
            yield tmp, None
        return
    folder = os.path.join(storage.trial_fs_path, STAGING_FOLDER)
    shutil.rmtree(folder, ignore_errors=True)  # left by a killed trial
    make_private_dir(folder)
    try:
        yield folder, storage.storage_filesystem
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _links_staged_files(filesystem: Any) -> bool:
    """Whether ``filesystem`` is the session's (``pyarrow.fs.PyFileSystem`` over `AtomicLocalFileSystem`)."""
    return bool(getattr(getattr(getattr(filesystem, "handler", None), "fs", None), "links_staged_files", False))


@contextlib.contextmanager
def readable_checkpoint(folder: str) -> Iterator[str]:
    """The Lightning checkpoint of a trial checkpoint ``folder``; a compressed one is decompressed to a
    temporary folder (never into the session), removed on exit."""
    compressed = os.path.join(folder, COMPRESSED_CHECKPOINT_FILE)
    if not os.path.exists(compressed):
        yield os.path.join(folder, CHECKPOINT_FILE)
        return
    import pyarrow as pa

    with tempfile.TemporaryDirectory(prefix="lightning_bohb_ckpt_") as tmp:
        path = os.path.join(tmp, CHECKPOINT_FILE)
        with pa.CompressedInputStream(compressed, "zstd") as source, pa.OSFile(path, "wb") as target:
            while chunk := source.read(_CHUNK):
                target.write(chunk)
        yield path
