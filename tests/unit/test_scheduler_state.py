"""Scheduler state through Tune's callback state, and BOHB's re-pausing of trials, without a Ray cluster."""

import logging

import ray
from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler

from lightning_bohb._ray.bohb_scheduler import ResumableHyperBandForBOHB
from lightning_bohb._ray.scheduler_state import RepausingScheduler, SchedulerStateCallback


def _trial(trial_id, status=Trial.PENDING):
    trial = Trial("fn", config={}, trial_id=trial_id, stub=True)
    trial.status = status
    return trial


class Controller:
    """Stands in for the TuneController calls a scheduler may make."""

    def __init__(self, trials):
        self.trials = trials

    def get_trials(self):
        return self.trials

    def _set_trial_status(self, trial, status):
        trial.status = status


def test_bohb_implements_the_repause_protocol_and_asha_does_not():
    assert isinstance(ResumableHyperBandForBOHB(metric="m", mode="min", max_t=9), RepausingScheduler)
    assert not isinstance(ASHAScheduler(metric="m", mode="min", max_t=9), RepausingScheduler)


def test_paused_trials_come_back_paused_after_a_resume():
    saved = SchedulerStateCallback(ResumableHyperBandForBOHB(metric="m", mode="min", max_t=9))
    saved.on_step_end(0, [_trial("a", Trial.PAUSED), _trial("b", Trial.RUNNING)])
    state = saved.get_state()
    assert state["paused"] == ["a"] and state["ray"] == ray.__version__

    scheduler = ResumableHyperBandForBOHB(metric="m", mode="min", max_t=9)
    restored = SchedulerStateCallback(scheduler)
    restored.set_state(state)
    trials = [_trial("a"), _trial("b")]  # Tune makes every unfinished trial PENDING on resume
    restored.on_step_begin(0, trials)
    scheduler.apply_repause(Controller(trials))
    assert [t.status for t in trials] == [Trial.PAUSED, Trial.PENDING]
    scheduler.apply_repause(Controller(trials))  # once only
    assert trials[0].status == Trial.PAUSED


def test_state_from_another_ray_version_is_restored_with_a_warning(caplog):
    state = SchedulerStateCallback(ASHAScheduler(metric="m", mode="min", max_t=9)).get_state()
    state["ray"] = "0.0.1"
    callback = SchedulerStateCallback(ASHAScheduler(metric="m", mode="min", max_t=9))
    with caplog.at_level(logging.WARNING, logger="lightning_bohb"):
        callback.set_state(state)
    assert "Ray 0.0.1" in caplog.text
    callback.on_step_begin(0, [])


def test_state_of_another_scheduler_is_ignored_with_a_warning(caplog):
    state = SchedulerStateCallback(ASHAScheduler(metric="m", mode="min", max_t=9)).get_state()
    callback = SchedulerStateCallback(ResumableHyperBandForBOHB(metric="m", mode="min", max_t=9))
    with caplog.at_level(logging.WARNING, logger="lightning_bohb"):
        callback.set_state(state)
    assert "starts fresh" in caplog.text
