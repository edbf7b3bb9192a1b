"""`PauseCoordinator`: the driver side of a pause, as a Ray Tune callback.

Keyboard, signals and ``lightning-bohb pause`` call `request_pause` / `quit_now` from any thread.
Inside Tune's loop (main thread) the coordinator waits until every RUNNING trial has acknowledged
the pause and Tune has registered the checkpoint that trial reported last; then it ends the run
through Tune's own interrupt event, so the experiment snapshot keeps those trials resumable.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, List, Optional

import ray
from ray.tune import Callback
from ray.tune.experiment import Trial

from lightning_bohb.session.ray_internals import end_trial_actors, tune_interrupt_event

PAUSED, QUIT = "paused", "quit"


class PauseCoordinator(Callback):
    """Ends a Tune run at a pause once all running trials are safely checkpointed.

    Args:
        control: Handle of the session's control actor (`lightning_bohb.session.control`).
        pause_timeout: Seconds to wait for trials to reach validation before stopping them anyway.
        on_setup: Called on the main thread when Tune has installed its own signal handlers.
        on_result: Called with ``(trial, result)`` for every reported result.
        auto_pause: Called with each result's metrics; returning True pauses the session.
        pause_deadline: Epoch seconds at which the session pauses itself (``pause_after``/``pause_at``).
    """

    def __init__(
        self,
        control: Any,
        pause_timeout: float,
        on_setup: Callable[[], None] = lambda: None,
        on_result: Callable[[Trial, Dict[str, Any]], None] = lambda trial, result: None,
        auto_pause: Callable[[Dict[str, Any]], bool] = lambda metrics: False,
        pause_deadline: Optional[float] = None,
    ) -> None:
        self.control = control
        self.pause_timeout = pause_timeout
        self.on_setup = on_setup
        self.on_result = on_result
        self.auto_pause = auto_pause
        self.pause_deadline = pause_deadline
        self.requested_at: Optional[float] = None
        self.stop_reason: Optional[str] = None
        self.waiting: List[str] = []
        self.trials: List[Trial] = []
        self.statuses_at_stop: Dict[str, str] = {}
        self.timed_out: Dict[str, Optional[int]] = {}
        self._interrupt: Optional[threading.Event] = None
        self._quit = threading.Event()

    # -- requests, from any thread ------------------------------------------------------------
    @property
    def pause_pending(self) -> bool:
        return self.requested_at is not None

    def request_pause(self) -> None:
        if self.requested_at is None:
            self.requested_at = time.time()
            self.control.request_pause.remote()

    def cancel_pause(self) -> None:
        if self.requested_at is not None:
            self.requested_at = None
            self.waiting = []
            self.control.cancel_pause.remote()

    def quit_now(self) -> None:
        self._quit.set()
        if self._interrupt is not None:
            self._interrupt.set()

    def describe(self) -> Dict[str, Any]:
        """Pause state for the session summary."""
        return {"pause_requested": self.pause_pending, "waiting_for": list(self.waiting)}

    # -- Tune hooks, on the driver's main thread ----------------------------------------------
    def setup(self, **info) -> None:
        self._interrupt = tune_interrupt_event()
        self.on_setup()
        if self._quit.is_set():
            self._interrupt.set()

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        self.trials = trials
        self.on_result(trial, result)
        if not self.pause_pending and self.auto_pause(result):
            self.request_pause()

    def on_step_end(self, iteration, trials, **info) -> None:
        self.trials = trials
        if self.pause_deadline is not None and time.time() >= self.pause_deadline:
            self.pause_deadline = None
            self.request_pause()
        if self._quit.is_set():
            self._stop(QUIT)
        elif self.pause_pending:
            self._check_pause(trials)

    def _check_pause(self, trials: List[Trial]) -> None:
        acks = ray.get(self.control.acknowledgements.remote())
        running = [t for t in trials if t.status == Trial.RUNNING]
        self.waiting = [t.trial_id for t in running if not _checkpointed(t, acks)]
        if not self.waiting:
            self._stop(PAUSED)
        elif time.time() - self.requested_at > self.pause_timeout:
            self.timed_out = {t.trial_id: _last_epoch(t) for t in running if t.trial_id in self.waiting}
            self._stop(PAUSED)

    def _stop(self, reason: str) -> None:
        # Tune's loop ends before it processes another event and snapshots the trials as they are
        # in memory, so ending the trials' processes now cannot change what the snapshot records;
        # what a trial has not reported by now is lost either way.
        if self.stop_reason is None:
            self.stop_reason = reason
            # Tune's cleanup marks every live trial TERMINATED in memory; the snapshot keeps them live.
            self.statuses_at_stop = {t.trial_id: ("PAUSED" if t.status == Trial.RUNNING else t.status) for t in self.trials}
        self._interrupt.set()
        self.control.release.remote()
        end_trial_actors(self.trials)


def _checkpointed(trial: Trial, acks: Dict[str, Optional[int]]) -> bool:
    """A trial may be stopped once it acknowledged and Tune holds the checkpoint it reported last."""
    if trial.trial_id not in acks:
        return False
    step = acks[trial.trial_id]
    if step is None:  # held before its first epoch: nothing to save
        return True
    latest = trial.latest_checkpoint_result
    return latest is not None and latest.metrics.get("global_step", -1) >= step


def _last_epoch(trial: Trial) -> Optional[int]:
    latest = trial.latest_checkpoint_result
    return None if latest is None else latest.metrics.get("epoch")
