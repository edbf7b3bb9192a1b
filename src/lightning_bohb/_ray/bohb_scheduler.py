"""`ResumableHyperBandForBOHB`: Ray's `HyperBandForBOHB` that comes back from a pause as it left.

Two fixes over Ray 2.60 (ray#39900):
- On resume Tune makes every unfinished trial PENDING, also those HyperBand had PAUSED at a rung
  until the rest of their bracket caught up; started early, they break the bracket.
  `SchedulerStateCallback` restores the brackets and calls `repause` with those trials; this
  scheduler returns them to PAUSED before it chooses the next trial to run.
- A PAUSED trial that the bracket stops is snapshotted as still PAUSED; it is marked for the next
  snapshot here, so it stays finished after a resume.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional, Set

from ray.tune.experiment import Trial
from ray.tune.schedulers import HyperBandForBOHB

from lightning_bohb._ray.internals import mark_trial_for_snapshot, set_trial_status


class ResumableHyperBandForBOHB(HyperBandForBOHB):
    """`HyperBandForBOHB` that implements `lightning_bohb._ray.scheduler_state.RepausingScheduler`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._to_repause: Set[str] = set()

    def repause(self, trial_ids: Iterable[str]) -> None:
        """Return these trials to PAUSED (they were paused at a rung when the session paused)."""
        self._to_repause.update(trial_ids)

    def apply_repause(self, tune_controller: Any) -> None:
        """Set the trials named by `repause` that Tune made PENDING back to PAUSED."""
        if not self._to_repause:
            return
        for trial in tune_controller.get_trials():
            if trial.trial_id in self._to_repause and trial.status == Trial.PENDING:
                set_trial_status(tune_controller, trial, Trial.PAUSED)
        self._to_repause.clear()

    def choose_trial_to_run(self, tune_controller: Any, allow_recurse: bool = True) -> Optional[Trial]:
        self.apply_repause(tune_controller)
        return super().choose_trial_to_run(tune_controller, allow_recurse)

    def on_trial_remove(self, tune_controller: Any, trial: Trial) -> None:
        super().on_trial_remove(tune_controller, trial)
        mark_trial_for_snapshot(tune_controller, trial)
