"""The hooks LightningTune adds to a trial scheduler: the controller it remembers, the holds it obeys.

Tune hands a scheduler its TuneController in every call but keeps no reference a callback could
read (`capture_controller`); a trial added after a moved session's resume goes where the experiment is now
(`new_trials_where_the_experiment_is`); the pause coordinator amends the scheduler's decisions and hides the
trials it holds (`hold_trials`). Both replace the scheduler's class (`swap_class`).
"""

from __future__ import annotations

from typing import Any, Optional

from lightning_bohb._ray.class_swap import OWN_PREFIX, swap_class
from lightning_bohb._ray.tune_controller import unwrap_controller

_CONTROLLER = OWN_PREFIX + "controller"


def capture_controller(scheduler, on_capture=None) -> None:
    """Make ``scheduler`` remember the TuneController that drives it (``on_trial_add`` comes first).

    ``on_capture(controller)`` runs once, when the controller is first seen (before any trial runs).
    The scheduler's class is replaced by a subclass that records the controller: Tune hands a
    scheduler its controller in every call but keeps no reference a callback could read.
    """
    cls = type(scheduler)

    def on_trial_add(self, tune_controller, trial):
        controller = unwrap_controller(tune_controller)
        if getattr(self, _CONTROLLER, None) is not controller:
            setattr(self, _CONTROLLER, controller)
            if on_capture is not None:
                on_capture(controller)
        return cls.on_trial_add(self, tune_controller, trial)

    swap_class(scheduler, "captures", on_trial_add=on_trial_add)


def new_trials_where_the_experiment_is(scheduler) -> None:
    """Make each trial Tune adds keep its files where the experiment is now, also after a session moved.

    Tune moves the trials it restores from an experiment folder that moved since its snapshot
    (`TuneController._restore_trials`), but not the experiment its search algorithm restored: a trial that
    algorithm created after the resume of a moved session wrote to the old folder (and failed, "Unable to set
    up cluster storage").
    """
    import copy

    cls = type(scheduler)

    def on_trial_add(self, tune_controller, trial):
        current = unwrap_controller(tune_controller)._storage
        storage = trial.storage
        if (storage.storage_fs_path, storage.experiment_dir_name) != (current.storage_fs_path, current.experiment_dir_name):
            moved = copy.copy(storage)  # as Tune moves a restored trial
            moved.storage_filesystem = current.storage_filesystem
            moved.storage_fs_path = current.storage_fs_path
            moved.experiment_dir_name = current.experiment_dir_name
            trial.set_storage(moved)
        return cls.on_trial_add(self, tune_controller, trial)

    swap_class(scheduler, "moves_trials", on_trial_add=on_trial_add)


def captured_controller(scheduler) -> Optional[Any]:
    """The TuneController `capture_controller` saw drive ``scheduler``; None before its first trial (or uncaptured)."""
    return getattr(scheduler, _CONTROLLER, None)


def hold_trials(scheduler, hooks) -> None:
    """Let ``hooks`` (the coordinator) amend ``scheduler``'s decisions, for per-trial pause and stop.

    ``hooks.decide(trial, decision)`` may turn the decision on a result into PAUSE or STOP: Tune then
    saves a paused trial's checkpoint and frees its slot, as when HyperBand pauses one. Before each
    choice of a trial to run, ``hooks.before_choose(controller)`` applies holds and returns the ids of
    held trials, which the scheduler does not see among the controller's trials (FIFO and ASHA take a
    PAUSED trial from there to run it again), or None: no trial is to start now (a pause is pending).
    Like `capture_controller`, this replaces the class.
    """
    cls = type(scheduler)

    def on_trial_result(self, tune_controller, trial, result):
        return hooks.decide(trial, cls.on_trial_result(self, tune_controller, trial, result))

    def choose_trial_to_run(self, tune_controller, *args, **kwargs):
        held = hooks.before_choose(unwrap_controller(tune_controller))
        if held is None:
            return None
        view = _WithoutHeld(tune_controller, set(held)) if held else tune_controller
        return cls.choose_trial_to_run(self, view, *args, **kwargs)

    swap_class(scheduler, "holds", on_trial_result=on_trial_result, choose_trial_to_run=choose_trial_to_run)


class _WithoutHeld:
    """The controller as a scheduler sees it, less the trials held on request."""

    def __init__(self, inner, held) -> None:
        self._inner, self._held = inner, held

    def get_trials(self):
        return [trial for trial in self._inner.get_trials() if trial.trial_id not in self._held]

    def __getattr__(self, name):
        return getattr(self._inner, name)
