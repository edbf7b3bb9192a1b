"""`TuneReportCallback`: after each validated epoch, report every logged metric and a checkpoint to Tune."""

from __future__ import annotations

import os
import tempfile
from typing import Any, Dict

import lightning.pytorch as pl

from lightning_bohb.callbacks.epoch_boundary import ValidatedEpochEnd
from lightning_bohb.exceptions import LightningTuneError

CHECKPOINT_FILE = "checkpoint.ckpt"


class MetricNotLoggedError(LightningTuneError):
    """The metric the search optimizes was never logged by the model."""


class TuneReportCallback(ValidatedEpochEnd):
    """Reports ``trainer.callback_metrics`` plus ``epoch`` and ``global_step`` with a Lightning checkpoint.

    Args:
        metric: The metric the search optimizes; a validated epoch without it fails the trial.
    """

    def __init__(self, metric: str) -> None:
        super().__init__()
        self.metric = metric

    def on_validated_epoch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        from ray import tune

        metrics = self.collect_metrics(trainer)
        with tempfile.TemporaryDirectory(prefix="lightning_bohb_ckpt_") as tmp:
            trainer.save_checkpoint(os.path.join(tmp, CHECKPOINT_FILE))
            if trainer.is_global_zero:
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))

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
