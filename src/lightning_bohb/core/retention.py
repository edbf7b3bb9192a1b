"""`StoppedTrialCheckpoints`: delete the checkpoints of trials the scheduler stopped for good.

Tune keeps ``checkpoints_to_keep`` checkpoints of every trial, also of the trials ASHA or HyperBand
stopped early: those can never continue, yet their checkpoints are most of a large search's disk
use. This driver-side Tune callback deletes them once the trial's process has ended (so no upload
is in flight), except those of the best trial so far (`lightning_bohb.core.best_trial`), whose
checkpoints are deleted only when another trial becomes best. Trials that ran all ``max_epochs`` keep theirs;
nothing is deleted while a session pauses or quits (Tune's clean-up then ends trials that resume).
"""

from __future__ import annotations

import glob
import os
import shutil
from typing import Any, Callable, Dict, List, Mapping, Optional, Set

from ray.tune import Callback
from ray.tune.experiment import Trial

from lightning_bohb.core.best_trial import best_of
from lightning_bohb.log import logger


class StoppedTrialCheckpoints(Callback):
    """Deletes the checkpoint folders of trials that completed before ``max_epochs``, but the best's.

    Args:
        mode: ``"min"`` or ``"max"``, the search's mode.
        max_epochs: Epochs per trial; a trial that completed with fewer was stopped early.
        scores: Each trial's best value so far by its id (the session's ``trial_best``, kept up to date).
        ending: Returns True once the run is being paused or quit: completions are then ignored.
    """

    def __init__(self, mode: str, max_epochs: int, scores: Mapping[str, float], ending: Callable[[], bool] = lambda: False) -> None:
        self.mode, self.max_epochs, self.scores, self.ending = mode, max_epochs, scores, ending
        self.stopped: Dict[str, Trial] = {}  # stopped early, checkpoints still on disk
        self.deleted: Set[str] = set()
        self.freed_bytes = 0
        self._scanned = False  # trials a paused run stopped early and left undeleted: found at the first step

    @classmethod
    def for_session(cls, optimizer: Any, coordinator: Any, scores: Mapping[str, float]) -> "StoppedTrialCheckpoints":
        """The callback of a session run by ``optimizer`` whose pauses and quits ``coordinator`` handles,
        ``scores`` its trials' best values."""
        return cls(
            optimizer.mode,
            optimizer.optimization_config.max_epochs,
            scores,
            ending=lambda: coordinator.stop_reason is not None or coordinator.interrupted,
        )

    def on_trial_complete(self, iteration: int, trials: List[Trial], trial: Trial, **info: Any) -> None:
        if not self.ending():
            self._note(trial)

    def _note(self, trial: Trial) -> None:
        epoch = (trial.last_result or {}).get("epoch")
        if isinstance(epoch, int) and epoch + 1 < self.max_epochs and trial.trial_id not in self.deleted:
            self.stopped[trial.trial_id] = trial

    def on_step_end(self, iteration: int, trials: List[Trial], **info: Any) -> None:
        if not self._scanned:
            self._scanned = True
            for trial in trials:
                if trial.status == Trial.TERMINATED:
                    self._note(trial)
        if not self.stopped or self.ending():
            return
        best = self._best(trials)
        for trial_id, trial in list(self.stopped.items()):
            if trial is best or trial.temporary_state.ray_actor is not None:  # its process may still upload
                continue
            del self.stopped[trial_id]
            self.deleted.add(trial_id)
            self.freed_bytes += _delete_checkpoints(trial.path)

    def on_experiment_end(self, trials: List[Trial], **info: Any) -> None:
        self.on_step_end(0, trials)

    def _best(self, trials: List[Trial]) -> Optional[Trial]:
        top = best_of(((trial, self.scores.get(trial.trial_id)) for trial in trials), self.mode)
        return top[0] if top else None


def _delete_checkpoints(trial_dir: Optional[str]) -> int:
    """Delete the ``checkpoint_*`` folders of a local trial folder; returns the bytes freed."""
    if not trial_dir or not os.path.isabs(trial_dir):
        return 0
    freed = 0
    for folder in glob.glob(os.path.join(glob.escape(trial_dir), "checkpoint_*")):
        if os.path.isdir(folder) and not os.path.islink(folder):
            freed += sum(os.path.getsize(os.path.join(d, f)) for d, _, names in os.walk(folder) for f in names)
            shutil.rmtree(folder, ignore_errors=True)
    if freed:
        logger.debug("Deleted the checkpoints of stopped trial folder %s (%d bytes).", trial_dir, freed)
    return freed
