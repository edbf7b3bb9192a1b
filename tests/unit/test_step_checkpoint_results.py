"""`register_step_checkpoints`: a step checkpoint's report only saves its checkpoint (issue 13).

Against a stand-in controller with Tune's method names (the e2e test `test_step_pause.py` runs the
real one); the canary checks that Tune's controller still has what the patch calls.
"""

import pytest
from ray.tune.execution.tune_controller import TuneController
from ray.tune.schedulers import TrialScheduler

from lightning_bohb._ray.tune_controller import register_step_checkpoints
from lightning_bohb.pause.state import STEP_CHECKPOINT


class Trial:
    trial_id = "t1"

    def __init__(self, saving):
        self.is_saving = saving


class Controller:
    def __init__(self):
        self._cached_trial_decisions = {}
        self.calls = []

    def _process_trial_result(self, trial, result):
        self.calls.append(("result", result))  # scheduler, searcher, callbacks, result logs
        return TrialScheduler.CONTINUE

    def _checkpoint_trial_if_needed(self, trial, force=False):
        self.calls.append(("save", force))

    def _queue_decision(self, trial, decision):
        self.calls.append(("decision", decision))


def test_a_marked_report_saves_its_checkpoint_and_is_no_result():
    controller = Controller()
    register_step_checkpoints(controller, STEP_CHECKPOINT)
    register_step_checkpoints(controller, STEP_CHECKPOINT)  # once per class
    assert controller._process_trial_result(Trial(saving=False), {"val_loss": 1.0}) == TrialScheduler.CONTINUE
    assert controller._process_trial_result(Trial(saving=False), {STEP_CHECKPOINT: 1}) == TrialScheduler.CONTINUE
    assert controller._process_trial_result(Trial(saving=True), {STEP_CHECKPOINT: 1}) is None  # decided after the save
    assert controller.calls == [
        ("result", {"val_loss": 1.0}), ("save", True), ("decision", TrialScheduler.CONTINUE), ("save", True),
    ]
    assert controller._cached_trial_decisions == {"t1": TrialScheduler.CONTINUE}


def test_canary_tune_controller_still_processes_results_where_the_patch_expects():
    for name in ("_process_trial_result", "_checkpoint_trial_if_needed", "_queue_decision"):
        assert callable(getattr(TuneController, name, None)), name
    with pytest.raises(RuntimeError, match="no longer processes results"):
        register_step_checkpoints(object(), STEP_CHECKPOINT)
