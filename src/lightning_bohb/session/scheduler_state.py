"""Scheduler state across pause and resume (Ray saves searcher state, not scheduler state: ray#30838).

`SchedulerStateCallback` stores the scheduler's rungs and brackets with every experiment snapshot
Tune writes, and puts them back on resume before the first trial is started or any result is
processed. It also has Tune snapshot the experiment each time a trial checkpoints, so a ``kill -9``
of the driver loses at most the epoch each trial has in flight.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from ray.tune import Callback
from ray.tune.experiment import Trial

from lightning_bohb._logging import logger
from lightning_bohb.exceptions import SessionError
from lightning_bohb.session import ray_internals

STATE_VERSION = 1


class SchedulerStateCallback(Callback):
    """Saves and restores ``scheduler`` through Tune's callback state (``get_state``/``set_state``)."""

    def __init__(self, scheduler: Any) -> None:
        ray_internals.capture_controller(scheduler)
        self.scheduler = scheduler
        self._trials: List[Trial] = []
        self._pending: Optional[Dict[str, Any]] = None

    def get_state(self) -> Optional[Dict[str, Any]]:
        import ray

        return {
            "version": STATE_VERSION,
            "ray": ray.__version__,
            "scheduler": type(self.scheduler).__qualname__,
            "blob": ray_internals.dump_scheduler(self.scheduler),
            "paused": [t.trial_id for t in self._trials if t.status == Trial.PAUSED],
        }

    def set_state(self, state: Dict[str, Any]) -> None:
        if state.get("version", 0) > STATE_VERSION:
            raise SessionError(
                f"The scheduler state was saved by a newer lightning_bohb (state version {state.get('version')}, "
                f"this one reads {STATE_VERSION}). Upgrade: pip install -U lightning-bohb"
            )
        if state.get("scheduler") != type(self.scheduler).__qualname__:
            logger.warning(
                "Scheduler state is for %s, not %s; the scheduler starts fresh.",
                state.get("scheduler"),
                type(self.scheduler).__qualname__,
            )
            return
        self._pending = state

    def on_step_begin(self, iteration: int, trials: List[Trial], **info) -> None:
        self._trials = trials
        if self._pending is None:
            return
        state, self._pending = self._pending, None
        ray_internals.load_scheduler(self.scheduler, state["blob"], trials)
        repause = getattr(self.scheduler, "repause", None)
        if repause is not None:
            repause.update(state.get("paused", []))

    def on_step_end(self, iteration: int, trials: List[Trial], **info) -> None:
        self._trials = trials

    def on_trial_save(self, iteration: int, trials: List[Trial], trial: Trial, **info) -> None:
        self._trials = trials
        ray_internals.snapshot_experiment(self.scheduler)
