"""`TunePauseCallback`: pause a trial at its next validation boundary, leaving it resumable.

Unlike stopping (``trainer.should_stop``), which makes Tune mark the trial TERMINATED and lose it
on restore, a pausing trial has its checkpoint reported first (by the `TuneReportCallback` placed
before this one), acknowledges the pause to the driver and waits. The driver ends the run the way
Tune's own graceful interrupt does, with the trial still RUNNING in the experiment snapshot, then
releases the trial, whose worker exits at once; the resumed session continues from that checkpoint.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Dict, Optional

import lightning.pytorch as pl
from typing_extensions import override

from lightning_bohb.callbacks.epoch_boundary import ValidatedEpochEnd
from lightning_bohb.log import logger
from lightning_bohb.pause.channel import HoldState


class TunePauseCallback(ValidatedEpochEnd):
    """Checks for a pause request at the end of each validated epoch (never in the sanity check).

    Placed after `TuneReportCallback`, it runs after the model's epoch-end hooks and after the
    checkpoint report, so the pause falls on a clean epoch boundary.

    Args:
        pause_signal_file: A file whose existence requests a pause (single-machine use, for a
            Trainer run outside a session; inside a session the control channel decides).
        check_interval: Seconds between checks while the trial waits paused (a cancelled pause
            resumes training after at most this long).
        cli_instance: An in-process `TuneReflowCLI` whose ``pause_requested`` is consulted.
        verbose: Log pause decisions (rank zero only).
        control: A `ControlClient` for the session's control actor; set automatically in trials.
    """

    def __init__(
        self,
        pause_signal_file: Optional[Path] = None,
        check_interval: float = 1.0,
        cli_instance: Optional[Any] = None,
        verbose: bool = False,
        control: Optional[Any] = None,
    ) -> None:
        if check_interval <= 0:
            raise ValueError(f"The value of `check_interval` is {check_interval}, but must be `check_interval > 0`.")
        self.pause_signal_file = Path(pause_signal_file) if pause_signal_file else None
        self.check_interval = check_interval
        self.cli_instance = cli_instance
        self.verbose = verbose
        super().__init__()
        self.control = control
        self.pauses = 0

    def pause_requested(self) -> bool:
        if self.pause_signal_file is not None and self.pause_signal_file.exists():
            return True
        if self.cli_instance is not None and getattr(self.cli_instance, "pause_requested", False):
            return True
        if self.control is not None:
            try:
                return self.control.pause_requested()
            except Exception:  # the driver is gone: Ray ends this worker soon; hold still until then
                return True
        return False


    @override
    def on_train_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        # A trial that starts while a pause is pending has nothing to save: hold before training.
        if self._agreed(trainer):
            self._hold(trainer, global_step=None)

    def on_validated_epoch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if self._agreed(trainer):
            self._hold(trainer, global_step=trainer.global_step)

    def _agreed(self, trainer: "pl.Trainer") -> bool:
        return bool(trainer.strategy.reduce_boolean_decision(self.pause_requested(), all=False))

    def _hold(self, trainer: "pl.Trainer", global_step: Optional[int]) -> None:
        """Acknowledge the pause and wait until the driver ends the run, or the pause is cancelled."""
        self.pauses += 1
        if self.verbose and trainer.is_global_zero:
            logger.info("Pausing at global step %s; waiting for the session to stop.", global_step)
        if trainer.is_global_zero and self.control is not None:
            from ray import tune

            self.control.acknowledge(tune.get_context().get_trial_id(), global_step)
        while self._still_paused():
            pass
        if self.verbose and trainer.is_global_zero:
            logger.info("Pause cancelled; training continues.")

    def _still_paused(self) -> bool:
        """Wait up to ``check_interval`` s; False once the pause is cancelled. Exits when released."""
        if self.control is None:
            time.sleep(self.check_interval)
            return self.pause_requested()
        try:
            state = self.control.wait_while_paused(self.check_interval)
        except Exception:  # the driver is gone: Ray ends this worker soon; hold still until then
            time.sleep(self.check_interval)
            return True
        if state == HoldState.RELEASED:  # the driver ends this process; exit ourselves if it does not
            time.sleep(30)
            os._exit(0)
        return state == HoldState.PAUSED

    @override
    def state_dict(self) -> Dict[str, Any]:
        return {"pauses": self.pauses}

    @override
    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        self.pauses = state_dict.get("pauses", 0)
