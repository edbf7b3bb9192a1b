"""`ResumableHyperBandForBOHB`: Ray's `HyperBandForBOHB` that comes back from a pause as it left.

Two fixes over Ray 2.60 (ray#39900):
- On resume Tune makes every unfinished trial PENDING, also those HyperBand had PAUSED at a rung
  until the rest of their bracket caught up; started early, they break the bracket.
  `SchedulerStateCallback` restores the brackets and names those trials in ``repause``; this
  scheduler returns them to PAUSED before it chooses the next trial to run.
- A PAUSED trial that the bracket stops is snapshotted as still PAUSED; it is marked for the next
  snapshot here, so it stays finished after a resume.
"""

from __future__ import annotations

from typing import Optional

from ray.tune.experiment import Trial
from ray.tune.schedulers import HyperBandForBOHB

from lightning_bohb.session.ray_internals import mark_trial_for_snapshot, set_trial_status


class ResumableHyperBandForBOHB(HyperBandForBOHB):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.repause = set()

    def _apply_repause(self, tune_controller) -> None:
        if not self.repause:
            return
        for trial in tune_controller.get_trials():
            if trial.trial_id in self.repause and trial.status == Trial.PENDING:
                set_trial_status(tune_controller, trial, Trial.PAUSED)
        self.repause.clear()

    def choose_trial_to_run(self, tune_controller, allow_recurse: bool = True) -> Optional[Trial]:
        self._apply_repause(tune_controller)
        return super().choose_trial_to_run(tune_controller, allow_recurse)

    def on_trial_remove(self, tune_controller, trial: Trial) -> None:
        super().on_trial_remove(tune_controller, trial)
        mark_trial_for_snapshot(tune_controller, trial)
