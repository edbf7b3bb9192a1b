"""Tune's TuneController and the trials it runs: the private calls LightningTune makes on them.

Tune hands a scheduler a `TrialRunnerWrapper` around the controller, which warns on (and in a later
Ray may refuse) calls outside its whitelist: `unwrap_controller` is the controller itself. Each
function fails loudly, naming the Ray version, if a Ray upgrade changes what it touches;
`tests/unit/test_ray_internals.py` runs them against the installed Ray.
"""

from __future__ import annotations

from typing import Any

from lightning_bohb._ray.class_swap import OWN_PREFIX


def unwrap_controller(tune_controller: Any) -> Any:
    """The TuneController itself, given it or the `TrialRunnerWrapper` Tune hands a scheduler around it."""
    return getattr(tune_controller, "_tune_controller", tune_controller)


def end_trial_actors(trials) -> None:
    """Kill the Ray actor of every trial that has one, at once.

    For when the run is over and its snapshot is decided: a trial held at a pause never returns
    from its step, and Tune's cleanup waits 5 s for each such actor before killing it anyway.
    """
    import ray

    for trial in trials:
        actor = trial.temporary_state.ray_actor
        if actor is not None:
            ray.kill(actor, no_restart=True)  # an intended exit: Ray reports no crash


def set_trial_status(tune_controller, trial, status: str) -> None:
    """Change a trial's status through the controller (whitelisted for schedulers, but private)."""
    tune_controller._set_trial_status(trial, status)


def mark_trial_for_snapshot(tune_controller, trial) -> None:
    """Make Tune's next experiment snapshot re-serialize ``trial``.

    Ray 2.60 re-caches a trial's saved state only when it stops a trial that has a live actor, so a
    PAUSED trial that a scheduler stops is saved as still PAUSED and comes back on resume
    (the ``KeyError`` in ``TuneBOHB.to_wrapper`` of ray#39900's restores).
    """
    unwrap_controller(tune_controller)._mark_trial_to_checkpoint(trial)


def stop_trial(tune_controller, trial) -> None:
    """End a PENDING or PAUSED trial now, as Tune ends one a scheduler stops (scheduler, searcher and
    callbacks are told; it is TERMINATED)."""
    unwrap_controller(tune_controller).stop_trial(trial)


def set_trial_resources(trial, resources) -> bool:
    """Give a trial that is not running new resources (``{"cpu": c, "gpu": g}`` or a `PlacementGroupFactory`,
    one bundle per DDP rank); True if they changed."""
    from ray.tune.execution.placement_groups import PlacementGroupFactory, resource_dict_to_pg_factory

    wanted = resources if isinstance(resources, PlacementGroupFactory) else resource_dict_to_pg_factory(dict(resources))
    if trial.placement_group_factory == wanted:
        return False
    trial.update_resources(wanted)  # also makes the next snapshot save it
    return True


def register_step_checkpoints(controller, marker: str) -> None:
    """Make ``controller`` register the checkpoint of a report with the metric ``marker`` (a checkpoint
    taken at a training step) and do nothing else with it.

    Such a report is no epoch result: the scheduler (ASHA's and HyperBand's rungs), the searcher and
    the callbacks (Tune's result logs, the session's progress) never see it, and the trial's last
    result stays its last epoch's. Tune still saves its checkpoint as the trial's latest, the one a
    resumed session continues from, exactly as it does for an epoch result (`_process_trial_result`'s
    tail). The trial reports its own ``training_iteration`` (its epoch reports so far), which the
    checkpoint keeps for the resumed trial.
    """
    import ray
    from ray.tune.schedulers import TrialScheduler

    cls = type(controller)
    process = getattr(cls, "_process_trial_result", None)
    needed = ("_checkpoint_trial_if_needed", "_queue_decision", "_cached_trial_decisions")
    if process is None or not all(hasattr(controller, name) for name in needed):
        raise RuntimeError(
            f"Ray Tune {ray.__version__} no longer processes results the way lightning_bohb expects "
            "(TuneController._process_trial_result). Pin ray[tune]==2.60.0 or upgrade lightning_bohb."
        )
    markers = getattr(process, OWN_PREFIX + "markers", None)
    if markers is not None:
        markers.add(marker)
        return
    markers = {marker}

    def _process_trial_result(self, trial, result):
        if not any(result.get(name) for name in markers):
            return process(self, trial, result)
        self._checkpoint_trial_if_needed(trial, force=True)
        if trial.is_saving:  # the decision runs once the save is registered
            self._cached_trial_decisions.setdefault(trial.trial_id, TrialScheduler.CONTINUE)
            return None
        self._queue_decision(trial, TrialScheduler.CONTINUE)
        return TrialScheduler.CONTINUE

    # On the class, once per process: the experiment snapshot saves the controller's attributes (a
    # method among them would drag the controller in), and a subclass would be pickled by value
    # wherever the controller is referenced. Results without the marker take Tune's own path.
    setattr(_process_trial_result, OWN_PREFIX + "markers", markers)
    cls._process_trial_result = _process_trial_result
