"""`TrialResourcesCallback`: a resumed session's new resources per trial reach the trials it restored.

Tune saves each trial's resources (its placement group factory) in the experiment snapshot and
restores them as they were: only trials created after the resume would get the new
``cpus_per_trial``/``gpus_per_trial``. A session resumed with new ones (``lightning-bohb resume
--cpus-per-trial``) means them for every trial that runs from then on, e.g. after moving to other
machines, where the old request may not fit at all. Trials that ended keep what they ran with.
"""

from __future__ import annotations

from typing import Any, List

from ray.tune import Callback
from ray.tune.experiment import Trial

from lightning_bohb._ray.tune_controller import set_trial_resources
from lightning_bohb.log import logger


class TrialResourcesCallback(Callback):
    """Before the first trial starts, gives every restored trial that will run again ``resources``
    (``{"cpu": c, "gpu": g}``); a trial resumes from its checkpoint with them, no epoch retrained."""

    def __init__(self, resources: Any) -> None:
        self.resources = resources if not isinstance(resources, dict) else dict(resources)  # or a PlacementGroupFactory
        self.changed: List[str] = []
        self._done = False

    def on_step_begin(self, iteration: int, trials: List[Trial], **info: Any) -> None:
        if self._done:
            return
        self._done = True
        for trial in trials:
            if trial.status in (Trial.PENDING, Trial.PAUSED) and set_trial_resources(trial, self.resources):
                self.changed.append(trial.trial_id)
        if self.changed:
            logger.info("%d restored trial(s) run on with the resources per trial given now: %s", len(self.changed), self.resources)
