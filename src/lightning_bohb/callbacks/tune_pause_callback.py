"""`TunePauseCallback`: pause a trial at its next validation boundary, leaving it resumable.

Unlike stopping (``trainer.should_stop``), which makes Tune mark the trial TERMINATED and lose it
on restore, a pausing trial has its checkpoint reported first (by the `TuneReportCallback` placed
before this one), acknowledges the pause to the driver and waits. The driver ends the run the way
Tune's own graceful interrupt does, with the trial still RUNNING in the experiment snapshot, then
releases the trial, whose worker exits at once; the resumed session continues from that checkpoint.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_warn
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
        self._decided: Optional[Tuple[int, bool]] = None  # (global_step, pause?) taken by `decide_pause`
        self.report: Optional[Any] = None
        """The trial's `TuneReportCallback`, which writes a step checkpoint (set in trials; None: epoch ends only)."""
        self.loader_position: Optional[Any] = None
        """The trial's `LoaderPosition`: whether its training loader resumes mid-epoch exactly."""
        self.timing = EpochTiming()
        self.reports: Optional[int] = 0
        """Epoch reports so far (Tune's ``training_iteration``); None: resumed from a checkpoint without it."""
        self.step_checkpoints = 0
        self._polled = 0.0
        self._in_step_checkpoint = False
        self._warned = False

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

    # -- a pause with a deadline: checkpoint at a training step when the epoch end comes too late --
    @override
    def on_train_epoch_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        self.timing.last_step_end = None

    @override
    def on_train_batch_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", batch: Any, batch_idx: int) -> None:
        if self.timing.last_step_end is None:
            self.timing.last_step_end = time.monotonic()

    @override
    def on_train_batch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", outputs: Any, batch: Any, batch_idx: int) -> None:
        now = time.monotonic()
        self.timing.step_ended(now)
        if self.control is None or self.report is None or now - self._polled < STEP_POLL_S:
            return
        self._polled = now
        try:
            requested, deadline = self.control.pause_status()
        except Exception:  # the driver is gone: the epoch-end check holds the trial
            return
        if not requested or deadline is None:
            return
        expected = self.timing.to_validated_epoch_end(trainer, batch_idx)
        late = time.time() + expected * (1 + SAFETY_FRACTION) + SAFETY_S - deadline
        if late <= 0:
            return  # the epoch end comes in time: pause there, as without a deadline
        problem = self._mid_epoch_problem(trainer)
        if problem is not None:
            if not self._warned and trainer.is_global_zero:
                self._warned = True
                message = (
                    f"cannot checkpoint in the middle of an epoch: {problem}. It pauses at its epoch end instead, "
                    f"expected in {expected:.0f} s, later than the pause's deadline (a session that quits at the "
                    "deadline, as after SIGTERM, loses that epoch). Fix: use a DataLoader (or torchdata's "
                    "StatefulDataLoader) with shuffle=True/False over a map-style dataset."
                )
                rank_zero_warn(f"Trial {_trial_id()} {message}")
                with contextlib.suppress(Exception):  # the session shows it in its pause report
                    self.control.note(_trial_id(), message)
            return
        self._checkpoint_step(trainer)
        self._hold(trainer, global_step=trainer.global_step)
        self.timing.last_step_end = None  # the pause was cancelled: the hold is no step time

    def _mid_epoch_problem(self, trainer: "pl.Trainer") -> Optional[str]:
        if trainer.world_size > 1:
            return "a trial with several processes checkpoints only at epoch ends"
        if self.loader_position is None:
            return "its training loader was not made resumable"
        if self.loader_position.problem is not None:
            return f"its training loader cannot resume there exactly ({self.loader_position.problem})"
        return None

    def _checkpoint_step(self, trainer: "pl.Trainer") -> None:
        """Report a checkpoint of this step, marked as no epoch result (no rung, no result row)."""
        from lightning_bohb.pause.state import STEP_CHECKPOINT

        started = time.monotonic()
        reports = self.reports if self.reports is not None else trainer.current_epoch
        metrics = {STEP_CHECKPOINT: 1, "training_iteration": reports, "epoch": trainer.current_epoch, "global_step": trainer.global_step}
        self._in_step_checkpoint = True
        try:
            assert self.report is not None
            self.report.report_step_checkpoint(trainer, metrics)
        finally:
            self._in_step_checkpoint = False
        self.step_checkpoints += 1
        if self.verbose and trainer.is_global_zero:
            logger.info("Checkpointed at step %s (%.2f s) for a pause with a deadline.", trainer.global_step, time.monotonic() - started)

    @override
    def on_validation_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if not trainer.sanity_checking:
            self.timing.validation_started = time.monotonic()

    @override
    def on_validation_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        super().on_validation_end(trainer, pl_module)
        if not trainer.sanity_checking:
            self.timing.validation_ended(time.monotonic())

    def on_validated_epoch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        self.timing.epoch_end_done(time.monotonic())
        if self.reports is not None:
            self.reports += 1
        decided, self._decided = self._decided, None
        agreed = decided[1] if decided is not None and decided[0] == trainer.global_step else self._agreed(trainer)
        if agreed:
            self._hold(trainer, global_step=trainer.global_step)

    def decide_pause(self, trainer: "pl.Trainer") -> bool:
        """Take this epoch's pause decision now (for `TuneReportCallback` with ``checkpoint_every > 1``,
        which must checkpoint where the trial pauses); `on_validated_epoch_end` then keeps it."""
        self._decided = (trainer.global_step, self._agreed(trainer))
        return self._decided[1]

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
        state: Dict[str, Any] = {"pauses": self.pauses}
        if self.reports is not None:
            # At an epoch end the report callback checkpoints before this callback counts the report.
            state["reports"] = self.reports + (1 if self._validated and not self._in_step_checkpoint else 0)
        return state

    @override
    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        self.pauses = state_dict.get("pauses", 0)
        self.reports = state_dict.get("reports")


STEP_POLL_S = 0.25
"""Seconds between a trial's checks for a pause deadline at training steps (one small actor call each)."""
SAFETY_FRACTION = 0.1
SAFETY_S = 1.0
"""An epoch end counts as in time when it is expected this much before the deadline: 10% of the wait
plus a second for Tune to register the checkpoint."""


class EpochTiming:
    """How long a trial's training steps, validation and epoch-end work (reports, checkpoints) take."""

    def __init__(self) -> None:
        self.step_s: Optional[float] = None
        self.validation_s: Optional[float] = None
        self.epoch_end_s: Optional[float] = None
        self.last_step_end: Optional[float] = None
        self.validation_started: Optional[float] = None
        self._validation_end: Optional[float] = None

    def step_ended(self, now: float) -> None:
        if self.last_step_end is not None:
            took = now - self.last_step_end
            self.step_s = took if self.step_s is None else 0.8 * self.step_s + 0.2 * took
        self.last_step_end = now

    def validation_ended(self, now: float) -> None:
        if self.validation_started is not None:
            self.validation_s = now - self.validation_started
        self._validation_end = now

    def epoch_end_done(self, now: float) -> None:
        if self._validation_end is not None:
            self.epoch_end_s = now - self._validation_end
            self._validation_end = None

    def to_validated_epoch_end(self, trainer: "pl.Trainer", batch_idx: int) -> float:
        """Seconds from now until the next validated epoch end is reported, as measured so far."""
        step = self.step_s or 0.0
        batches = trainer.num_training_batches
        if not math.isfinite(batches):
            return math.inf
        every = trainer.check_val_every_n_epoch or 1
        later_epochs = (every - (trainer.current_epoch + 1) % every) % every
        remaining = max(0, int(batches) - (batch_idx + 1)) + later_epochs * int(batches)
        validation = self.validation_s
        if validation is None:
            validation = step * sum(int(n) for n in trainer.num_val_batches if math.isfinite(n))
        return remaining * step + validation + (self.epoch_end_s or 0.0)


def _trial_id() -> str:
    try:
        from ray import tune

        return str(tune.get_context().get_trial_id())
    except Exception:
        return "(outside Tune)"
