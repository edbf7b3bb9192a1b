"""`PauseCoordinator`: the driver side of a pause, as a Ray Tune callback.

It reads the session's `PauseState` (keys, signals and ``lightning-bohb pause`` write it from any
thread). Inside Tune's loop (main thread) it waits until every RUNNING trial has acknowledged the
pause and Tune has registered the checkpoint that trial reported last; then it ends the run through
Tune's own interrupt event, so the experiment snapshot keeps those trials resumable.

It also tells the session when a trial changes status, and carries out per-trial requests
(`lightning_bohb.pause.trial_requests`) through Tune's own scheduler decisions: a trial asked to pause
gets a PAUSE decision on its next result (Tune saves its checkpoint and frees its slot, as when
HyperBand pauses a trial) and is never chosen to run again until continued.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from ray.tune import Callback
from ray.tune.experiment import Trial

from lightning_bohb._ray.scheduler_hooks import hold_trials
from lightning_bohb._ray.search_budget import set_searcher_limit
from lightning_bohb._ray.tune_controller import end_trial_actors, set_trial_status, stop_trial
from lightning_bohb._ray.tune_run import tune_interrupt_event
from lightning_bohb.log import logger
from lightning_bohb.pause import trial_requests
from lightning_bohb.pause.state import PauseState, StopReason
from lightning_bohb.pause.trial_requests import TrialHolds, TrialRequest
from lightning_bohb.pause.trial_status import ENDED, TrialAction, TrialStatus

_REQUESTS_EVERY_S = 0.5


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
        on_trial_status: Called with ``(trial, previous, status)`` when a trial changes status
            (``previous`` None: first seen in this run; trials already ended before it are not reported).
        session_dir: Where per-trial requests arrive (``<session_dir>/requests``); None: none are read.
        on_step: Called after every step of Tune's loop, once its status changes are reported.
        check_owned: Called first at every step of Tune's loop, also while pausing, and on every result before
            Tune lets its trial train on; raises to end the run
            at once (the runner's `lightning_bohb.exceptions.SessionLockLost`: its lock was lost).
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
        on_trial_status: Callable[[Trial, Optional[str], str], None] = lambda trial, previous, status: None,
        session_dir: Optional[Path] = None,
        on_step: Callable[[], None] = lambda: None,
        check_owned: Callable[[], None] = lambda: None,
    ) -> None:
        self.pause = pause
        self.control = control
        self.pause_timeout = pause_timeout
        self.on_setup = on_setup
        self.on_result = on_result
        self.auto_pause = auto_pause
        self.pause_deadline = pause_deadline
        self.stop_reason: Optional[StopReason] = None
        self._waiting: Optional[List[str]] = None
        """The running trials not yet checkpointed for a pending pause; None: not checked since it was asked."""
        self.trials: List[Trial] = []
        self.statuses_at_stop: Dict[str, str] = {}
        self.timed_out: Dict[str, Optional[int]] = {}
        self.epoch_end_only: Dict[str, str] = {}
        """Trials that could not checkpoint at a step for a pause with a deadline: id -> why."""
        self._interrupt: Optional[threading.Event] = None
        self.on_trial_status = on_trial_status
        self.on_step = on_step
        self.check_owned = check_owned
        self.session_dir = session_dir
        self.holds = TrialHolds()
        self._statuses: Dict[str, str] = {}
        self._requests_read = 0.0
        self._controller: Any = None
        self._search_alg: Any = None
        self._max_concurrent = 0
        self._hold_refusal: Optional[str] = None

    @property
    def waiting(self) -> List[str]:
        """The running trials a pending pause waits for (not yet checkpointed for it); until the first
        check after the request (the next step of Tune's loop), every running trial."""
        if self._waiting is not None:
            return list(self._waiting)
        if not self.pause.pause_pending or self.stop_reason is not None:
            return []
        return [t.trial_id for t in self.trials if t.status == TrialStatus.RUNNING]

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
        return {
            "pause_requested": self.pause.pause_pending,
            "waiting_for": list(self.waiting),
            "held_trials": sorted(self.holds.held),  # PAUSED on request (`lightning-bohb trial pause`)
            "pausing_trials": sorted(self.holds.pausing),  # asked to pause at their next validated epoch end
        }

    # -- Tune hooks, on the driver's main thread ----------------------------------------------
    def setup(self, stop: Any = None, num_samples: Optional[int] = None, total_num_samples: Optional[int] = None, **info: Any) -> None:
        self.attach_interrupt(tune_interrupt_event())
        self.on_setup()

    def attach_interrupt(self, interrupt: threading.Event) -> None:
        """Use ``interrupt`` (Tune's) to end the loop; a quit, even one asked already, sets it."""
        self._interrupt = interrupt
        self.pause.on_quit(interrupt.set)

    def on_trial_result(self, iteration: int, trials: List[Trial], trial: Trial, result: Dict[str, Any], **info: Any) -> None:
        self.check_owned()  # before Tune lets the trial train on: a driver woken past its lease stops here
        self.trials = trials
        self.on_result(trial, result)
        if not self.pause.pause_pending and self.auto_pause(result):
            self.pause.request_pause()

    def on_step_end(self, iteration: int, trials: List[Trial], **info: Any) -> None:
        self.check_owned()  # Tune's loop ends on this exception: its trials are stopped, no snapshot is taken
        self.trials = trials
        if self.stop_reason is None:
            self._report_status_changes(trials)
            self.on_step()
            if self.session_dir is not None and time.monotonic() - self._requests_read >= _REQUESTS_EVERY_S:
                self._requests_read = time.monotonic()
                self._handle_requests(trials)
        if self.pause_deadline is not None and time.time() >= self.pause_deadline:
            # ``pause_after``/``pause_at`` name when to be paused: trials whose epoch end is not near checkpoint at a step
            self.pause.request_pause(deadline=self.pause_deadline)
            self.pause_deadline = None
        if self.pause.quit_requested:
            self._stop(StopReason.QUIT)
        elif self.pause.pause_pending:
            self._check_pause(trials)
        else:
            self._waiting = None

    def _check_pause(self, trials: List[Trial]) -> None:
        acks = self.control.acknowledgements()
        if self.pause.deadline is not None:
            for trial_id, why in self.control.notes().items():
                if trial_id not in self.epoch_end_only:
                    self.epoch_end_only[trial_id] = why
                    logger.warning("Trial %s %s", trial_id, why)
        running = [t for t in trials if t.status == TrialStatus.RUNNING]
        self._waiting = [t.trial_id for t in running if not checkpointed(t, acks)]
        if not self._waiting:
            self._stop(StopReason.PAUSED)
        elif time.time() - (self.pause.requested_at or time.time()) > self.pause_timeout:
            self.timed_out = {t.trial_id: last_epoch(t) for t in running if t.trial_id in self._waiting}
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


    # -- trial status and per-trial requests ----------------------------------------------------
    def _report_status_changes(self, trials: List[Trial]) -> None:
        for trial in trials:
            status, previous = trial.status, self._statuses.get(trial.trial_id)
            if status == previous:
                continue
            self._statuses[trial.trial_id] = status
            if previous is None and status in ENDED:
                continue  # ended before this run (a resumed session)
            self.on_trial_status(trial, previous, status)

    def control_trials(self, scheduler: Any, search_alg: Any = None, max_concurrent: int = 0) -> None:
        """Carry out per-trial requests through ``scheduler``'s decisions (call before the run).

        ``search_alg`` and ``max_concurrent`` (0: unlimited): a held trial gives its slot to a new one,
        so the searcher's limit on unfinished trials is raised by the number of trials held.
        """
        from ray.tune.schedulers import HyperBandScheduler

        self._search_alg, self._max_concurrent = search_alg, max_concurrent
        if isinstance(scheduler, HyperBandScheduler):
            self._hold_refusal = (
                "HyperBand/BOHB advance the trials of a bracket together, so one trial cannot be held "
                "while its bracket waits for it; pause the whole session instead"
            )
        hold_trials(scheduler, self)

    def before_choose(self, controller: Any) -> Optional[Tuple[str, ...]]:
        """Called by the scheduler before it chooses a trial to run: apply holds; returns the held ids,
        or None while a pause or quit is pending: then no trial starts (it would be stopped before its
        first epoch, and shown as paused with none)."""
        self._controller = controller
        holds = self.holds
        if holds.restored:  # a resumed session: Tune made every unfinished trial PENDING
            holds.restored = False
            for trial in controller.get_trials():
                if trial.trial_id in holds.held and trial.status == TrialStatus.PENDING:
                    set_trial_status(controller, trial, Trial.PAUSED)
        if holds.to_continue:
            for trial in controller.get_trials():
                if trial.trial_id in holds.to_continue and trial.status == TrialStatus.PAUSED:
                    set_trial_status(controller, trial, Trial.PENDING)
            holds.to_continue.clear()
        if self._max_concurrent and self._search_alg is not None:
            set_searcher_limit(self._search_alg, self._max_concurrent + len(holds.held))
        if self.pause.pause_pending or self.pause.quit_requested:
            return None
        return tuple(holds.held)

    def decide(self, trial: Trial, decision: str) -> str:
        """The scheduler's decision on a result of ``trial``, after any request for that trial."""
        return self.holds.decide(trial.trial_id, decision)

    def _handle_requests(self, trials: List[Trial]) -> None:
        assert self.session_dir is not None
        by_id = {trial.trial_id: trial for trial in trials}
        for request in trial_requests.take_requests(self.session_dir):
            trial = by_id.get(request.trial_id)
            if trial is None:
                logger.warning("Ignoring a request to %s trial %s: this session has no such trial.", request.action, request.trial_id)
            elif not self._apply(request, trial):
                continue  # kept for a later step
            trial_requests.done(request)

    def _apply(self, request: TrialRequest, trial: Trial) -> bool:
        """Act on one valid request; False to keep it for later (the controller is not known yet)."""
        trial_id, status = trial.trial_id, trial.status
        if status in ENDED:
            logger.warning("Ignoring a request to %s trial %s: it has already ended (%s).", request.action, trial_id, status)
            return True
        if request.action == TrialAction.PAUSE:
            if self._hold_refusal:
                logger.warning("Cannot pause trial %s alone: %s.", trial_id, self._hold_refusal)
            else:
                self.holds.apply(request.action, trial_id, status)
            logger.info("Trial %s pauses at its next validated epoch end.", trial_id)
            return True
        if request.action == TrialAction.STOP and status != TrialStatus.RUNNING and self._controller is None:
            return False
        if self.holds.apply(request.action, trial_id, status):  # stop a PENDING or PAUSED trial now
            stop_trial(self._controller, trial)
        return True

    # -- Tune callback state: the holds travel with every experiment snapshot ------------------
    def get_state(self) -> Optional[Dict[str, Any]]:
        state = self.holds.state()
        return {"holds": state} if state else None

    def set_state(self, state: Dict[str, Any]) -> None:
        holds = state.get("holds") if isinstance(state, dict) else None
        if isinstance(holds, dict):
            self.holds.restore(holds)


def _status_at_stop(trial: Trial) -> str:
    """A running trial resumes from its last checkpoint (PAUSED) or, with none yet, starts over
    (PENDING). Tune's ``last_result`` is never empty (it holds the trial id before any report)."""
    if trial.status == Trial.RUNNING:
        return Trial.PAUSED if trial.latest_checkpoint_result is not None else Trial.PENDING
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
