"""`PauseCoordinator`: the driver side of a pause, as a Ray Tune callback.

It reads the session's `PauseState` (keys, signals and ``lightning-bohb pause`` write it from any
thread). Inside Tune's loop (main thread) it waits until every RUNNING trial has acknowledged the
pause and Tune has registered the checkpoint that trial reported last; then it ends the run through
Tune's own interrupt event, so the experiment snapshot keeps those trials resumable.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, List, Optional

from ray.tune import Callback
from ray.tune.experiment import Trial

from lightning_bohb._ray.internals import end_trial_actors, tune_interrupt_event
from lightning_bohb.pause.state import PauseState, StopReason


class PauseCoordinator(Callback):
    """Ends a Tune run at a pause once all running trials are safely checkpointed.

    Args:
        pause: The session's pause state.
        control: The session's pause channel (`lightning_bohb.pause.channel.ChannelHandle`).
        pause_timeout: Seconds to wait for trials to reach validation before stopping them anyway.
        on_setup: Called on the main thread when Tune has installed its own signal handlers.
        on_result: Called with ``(trial, result)`` for every reported result.
        auto_pause: Called with each result's metrics; returning True pauses the session.
        pause_deadline: Epoch seconds at which the session pauses itself (``pause_after``/``pause_at``).
    """

    def __init__(
        self,
        pause: PauseState,
        control: Any,
        pause_timeout: float,
        on_setup: Callable[[], Any] = lambda: None,
        on_result: Callable[[Trial, Dict[str, Any]], None] = lambda trial, result: None,
        auto_pause: Callable[[Dict[str, Any]], bool] = lambda metrics: False,
        pause_deadline: Optional[float] = None,
    ) -> None:
        self.pause = pause
        self.control = control
        self.pause_timeout = pause_timeout
        self.on_setup = on_setup
        self.on_result = on_result
        self.auto_pause = auto_pause
        self.pause_deadline = pause_deadline
        self.stop_reason: Optional[StopReason] = None
        self.waiting: List[str] = []
        self.trials: List[Trial] = []
        self.statuses_at_stop: Dict[str, str] = {}
        self.timed_out: Dict[str, Optional[int]] = {}
        self._interrupt: Optional[threading.Event] = None

    @property
    def interrupted(self) -> bool:
        """Whether Tune's loop was told to end early (by this coordinator, or by Tune's own handler)."""
        return self._interrupt is not None and self._interrupt.is_set()

    def status_of(self, trial: Trial) -> str:
        """The trial's status as the session shows it: after a stop, as it was when the run ended
        (Tune's cleanup marks every trial it ends TERMINATED, also those that will resume)."""
        return self.statuses_at_stop.get(trial.trial_id, trial.status) if self.stop_reason else trial.status

    def describe(self) -> Dict[str, Any]:
        """Pause state for the session summary."""
        return {"pause_requested": self.pause.pause_pending, "waiting_for": list(self.waiting)}

    # -- Tune hooks, on the driver's main thread ----------------------------------------------
    def setup(self, stop: Any = None, num_samples: Optional[int] = None, total_num_samples: Optional[int] = None, **info: Any) -> None:
        self.attach_interrupt(tune_interrupt_event())
        self.on_setup()

    def attach_interrupt(self, interrupt: threading.Event) -> None:
        """Use ``interrupt`` (Tune's) to end the loop; a quit, even one asked already, sets it."""
        self._interrupt = interrupt
        self.pause.on_quit(interrupt.set)

    def on_trial_result(self, iteration: int, trials: List[Trial], trial: Trial, result: Dict[str, Any], **info: Any) -> None:
        self.trials = trials
        self.on_result(trial, result)
        if not self.pause.pause_pending and self.auto_pause(result):
            self.pause.request_pause()

    def on_step_end(self, iteration: int, trials: List[Trial], **info: Any) -> None:
        self.trials = trials
        if self.pause_deadline is not None and time.time() >= self.pause_deadline:
            self.pause_deadline = None
            self.pause.request_pause()
        if self.pause.quit_requested:
            self._stop(StopReason.QUIT)
        elif self.pause.pause_pending:
            self._check_pause(trials)
        else:
            self.waiting = []

    def _check_pause(self, trials: List[Trial]) -> None:
        acks = self.control.acknowledgements()
        running = [t for t in trials if t.status == Trial.RUNNING]
        self.waiting = [t.trial_id for t in running if not checkpointed(t, acks)]
        if not self.waiting:
            self._stop(StopReason.PAUSED)
        elif time.time() - (self.pause.requested_at or time.time()) > self.pause_timeout:
            self.timed_out = {t.trial_id: last_epoch(t) for t in running if t.trial_id in self.waiting}
            self._stop(StopReason.PAUSED)

    def _stop(self, reason: StopReason) -> None:
        # Tune's loop ends before it processes another event and snapshots the trials as they are
        # in memory, so ending the trials' processes now cannot change what the snapshot records;
        # what a trial has not reported by now is lost either way.
        if self.stop_reason is None:
            self.stop_reason = reason
            # Tune's cleanup marks every live trial TERMINATED in memory; the snapshot keeps them live:
            # a running trial shows PAUSED (PENDING if it had not reported yet: it starts over).
            self.statuses_at_stop = {t.trial_id: _status_at_stop(t) for t in self.trials}
        if self._interrupt is not None:
            self._interrupt.set()
        self.control.release()
        end_trial_actors(self.trials)


def _status_at_stop(trial: Trial) -> str:
    if trial.status == Trial.RUNNING:
        return Trial.PAUSED if trial.last_result else Trial.PENDING
    return trial.status


def checkpointed(trial: Trial, acks: Dict[str, Optional[int]]) -> bool:
    """A trial may be stopped once it acknowledged and Tune holds the checkpoint it reported last."""
    if trial.trial_id not in acks:
        return False
    step = acks[trial.trial_id]
    if step is None:  # held before its first epoch: nothing to save
        return True
    latest = trial.latest_checkpoint_result
    return latest is not None and latest.metrics.get("global_step", -1) >= step


def last_epoch(trial: Trial) -> Optional[int]:
    latest = trial.latest_checkpoint_result
    return None if latest is None else latest.metrics.get("epoch")
