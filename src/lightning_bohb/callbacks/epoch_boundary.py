"""`ValidatedEpochEnd`: a callback hook for the end of each epoch in which validation ran.

It is a Lightning `Checkpoint` callback, so Lightning runs it after the LightningModule's own
``on_train_epoch_end``: a checkpoint taken there resumes at the next epoch with no hook run twice
(one taken in ``on_validation_end`` re-runs that epoch's ``on_train_epoch_end`` on resume).
"""

from __future__ import annotations

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Checkpoint
from typing_extensions import override


class ValidatedEpochEnd(Checkpoint):
    """Calls `on_validated_epoch_end` once per epoch that validated (never for the sanity check)."""

    def __init__(self) -> None:
        self._validated = False

    @override
    def on_validation_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if not trainer.sanity_checking:
            self._validated = True

    @override
    def on_train_epoch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if self._validated:
            self._validated = False
            self.on_validated_epoch_end(trainer, pl_module)

    def on_validated_epoch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        """Override: the epoch's training, validation and epoch-end hooks are all done."""
