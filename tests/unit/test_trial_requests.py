"""Per-trial requests: the request files (validated, never followed through links) and what the coordinator
does with them, on stand-in trials and a stand-in Tune controller (no Ray)."""

import json
import os
import threading
from types import SimpleNamespace

from ray.tune.experiment import Trial
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from lightning_bohb._ray import search_budget
from lightning_bohb.pause.coordinator import PauseCoordinator
from lightning_bohb.pause.state import PauseState
from lightning_bohb.pause.trial_requests import TrialHolds, pending_requests, request_dir, take_requests, write_request
from lightning_bohb.pause.trial_status import TrialAction, TrialStatus


def test_requests_round_trip_oldest_first(tmp_path):
    write_request(tmp_path, "pause", "a_00000")
    write_request(tmp_path, "continue", "a_00000")
    assert [(r.action, r.trial_id) for r in take_requests(tmp_path)] == [("pause", "a_00000"), ("continue", "a_00000")]
    assert oct(os.stat(request_dir(tmp_path)).st_mode & 0o777) == "0o700"


def test_trial_statuses_are_tunes_own_and_read_as_their_names():
    assert {status.name: status.value for status in TrialStatus} == {
        name: getattr(Trial, name) for name in ("PENDING", "RUNNING", "PAUSED", "TERMINATED", "ERROR")
    }
    assert f"{TrialStatus.PAUSED} / {TrialAction.STOP}" == "PAUSED / stop" and TrialStatus.RUNNING == Trial.RUNNING


def test_holds_allow_each_action_only_from_the_statuses_where_it_does_something():
    allowed = {(action.value, status.value) for action in TrialAction for status in TrialStatus if TrialHolds.allows(action, status)}
    assert allowed == {
        ("pause", "RUNNING"), ("pause", "PENDING"),
        ("continue", "PAUSED"), ("continue", "RUNNING"), ("continue", "PENDING"),
        ("stop", "RUNNING"), ("stop", "PENDING"), ("stop", "PAUSED"),
    }
    holds = TrialHolds()
    assert holds.apply("pause", "a", "RUNNING") is False and holds.pausing == {"a"}
    assert holds.apply("stop", "b", "RUNNING") is False and holds.stopping == {"b"}
    holds.held.add("c")
    assert holds.apply("continue", "c", "PAUSED") is False and holds.to_continue == {"c"} and "c" not in holds.held
    assert holds.apply("stop", "a", "PENDING") is True and "a" not in holds.pausing  # nothing in flight: stop it now


def test_invalid_request_files_are_dropped_never_acted_on(tmp_path):
    folder = request_dir(tmp_path)
    folder.mkdir()
    (folder / "1_0000000a.json").write_text(json.dumps({"action": "rm -rf", "trial": "a"}))
    (folder / "2_0000000b.json").write_text(json.dumps({"action": "pause", "trial": "../../etc"}))
    (folder / "3_0000000c.json").write_text("x" * 5000)
    (folder / "4_0000000d.json").write_text("[]")
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps({"action": "stop", "trial": "a"}))
    os.symlink(outside, folder / "5_0000000e.json")
    (folder / "notes.txt").write_text("not a request name")
    assert take_requests(tmp_path) == []
    assert sorted(os.listdir(folder)) == ["notes.txt"] and outside.exists()


def test_holds_turn_the_next_decision_into_pause_or_stop():
    holds = TrialHolds()
    holds.pausing.add("a")
    assert holds.decide("a", TrialScheduler.CONTINUE) == TrialScheduler.PAUSE and holds.held == {"a"}
    holds.pausing.add("b")
    assert holds.decide("b", TrialScheduler.STOP) == TrialScheduler.STOP and "b" not in holds.held  # the scheduler's stop wins
    holds.stopping.add("c")
    assert holds.decide("c", TrialScheduler.CONTINUE) == TrialScheduler.STOP
    assert holds.decide("d", TrialScheduler.CONTINUE) == TrialScheduler.CONTINUE
    assert holds.state() == {"held": ["a"], "stopping": []}


class Controller:
    """What the coordinator and the scheduler hooks use of Tune's controller."""

    def __init__(self, trials):
        self.trials = trials
        self.stopped = []

    def get_trials(self):
        return list(self.trials)

    def _set_trial_status(self, trial, status):
        trial.status = status

    def stop_trial(self, trial):
        self.stopped.append(trial.trial_id)
        trial.status = Trial.TERMINATED


def trial(trial_id, status=Trial.RUNNING, epochs=1):
    return SimpleNamespace(trial_id=trial_id, status=status, last_result={"training_iteration": epochs}, latest_checkpoint_result=None,
                           temporary_state=SimpleNamespace(ray_actor=None), config={})


def coordinator(tmp_path, statuses=None):
    pause = PauseState()
    seen = []
    coord = PauseCoordinator(pause, SimpleNamespace(acknowledgements=dict, release=lambda: None), pause_timeout=60,
                             session_dir=tmp_path, on_trial_status=lambda t, previous, status: seen.append((t.trial_id, previous, status)))
    coord.attach_interrupt(threading.Event())
    return coord, seen


def test_a_paused_trial_is_hidden_from_the_scheduler_until_continued(tmp_path):
    coord, _ = coordinator(tmp_path)
    a, b = trial("a"), trial("b", status=Trial.PENDING, epochs=0)
    scheduler = FIFOScheduler()
    search_alg = SimpleNamespace()
    coord.control_trials(scheduler, search_alg, max_concurrent=0)
    controller = Controller([a, b])

    write_request(tmp_path, "pause", "a")
    coord.on_step_end(1, [a, b])
    assert pending_requests(tmp_path) == []  # taken
    assert scheduler.on_trial_result(controller, a, {"training_iteration": 1}) == TrialScheduler.PAUSE
    a.status = Trial.PAUSED  # what Tune does with the PAUSE decision once the checkpoint is saved
    b.status = Trial.TERMINATED
    assert scheduler.choose_trial_to_run(controller) is None  # FIFO would run a PAUSED trial again: not this one

    write_request(tmp_path, "continue", "a")
    coord._requests_read = 0
    coord.on_step_end(2, [a, b])
    assert scheduler.choose_trial_to_run(controller) is a and a.status == Trial.PENDING


def test_holds_survive_a_session_pause_through_the_callback_state(tmp_path):
    coord, _ = coordinator(tmp_path)
    coord.holds.held.add("a")
    state = coord.get_state()
    fresh, _ = coordinator(tmp_path)
    fresh.set_state(state)
    scheduler = FIFOScheduler()
    fresh.control_trials(scheduler)
    a, b = trial("a", status=Trial.PENDING), trial("b", status=Trial.PENDING)  # Tune resumes unfinished trials PENDING
    assert scheduler.choose_trial_to_run(Controller([a, b])) is b and a.status == Trial.PAUSED


def test_stop_ends_a_running_trial_at_its_next_result_and_a_paused_one_at_once(tmp_path):
    coord, _ = coordinator(tmp_path)
    scheduler = FIFOScheduler()
    coord.control_trials(scheduler)
    a, b = trial("a"), trial("b", status=Trial.PENDING)
    controller = Controller([a, b])
    scheduler.choose_trial_to_run(controller)  # the coordinator meets the controller
    write_request(tmp_path, "stop", "a")
    write_request(tmp_path, "stop", "b")
    coord.on_step_end(1, [a, b])
    assert controller.stopped == ["b"]
    assert scheduler.on_trial_result(controller, a, {}) == TrialScheduler.STOP


def test_requests_for_unknown_or_ended_trials_are_dropped(tmp_path):
    coord, _ = coordinator(tmp_path)
    coord.control_trials(FIFOScheduler())
    write_request(tmp_path, "pause", "ghost")
    write_request(tmp_path, "pause", "done")
    coord.on_step_end(1, [trial("done", status=Trial.TERMINATED)])
    assert pending_requests(tmp_path) == [] and not coord.holds


def test_hyperband_refuses_to_hold_one_trial(tmp_path):
    from lightning_bohb._ray.bohb_scheduler import ResumableHyperBandForBOHB

    coord, _ = coordinator(tmp_path)
    coord.control_trials(ResumableHyperBandForBOHB(metric="m", mode="min", max_t=9))
    write_request(tmp_path, "pause", "a")
    coord.on_step_end(1, [trial("a")])
    assert not coord.holds.pausing


def test_status_changes_are_reported_once_and_old_endings_not_at_all(tmp_path):
    coord, seen = coordinator(tmp_path)
    a, old = trial("a", status=Trial.PENDING), trial("old", status=Trial.TERMINATED)
    coord.on_step_end(1, [a, old])
    a.status = Trial.RUNNING
    coord.on_step_end(2, [a, old])
    coord.on_step_end(3, [a, old])
    a.status = Trial.TERMINATED
    coord.on_step_end(4, [a, old])
    assert seen == [("a", None, "PENDING"), ("a", "PENDING", "RUNNING"), ("a", "RUNNING", "TERMINATED")]


def test_a_held_trial_gives_its_slot_to_the_searcher():
    from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    generator = BasicVariantGenerator(max_concurrent=2)
    search_budget.set_searcher_limit(generator, 3)
    assert generator.max_concurrent == 3
    limiter = ConcurrencyLimiter(OptunaSearch(), max_concurrent=2)
    search_budget.set_searcher_limit(limiter, 4)
    assert limiter.max_concurrent == 4
    unlimited = BasicVariantGenerator(max_concurrent=0)
    search_budget.set_searcher_limit(unlimited, 1)
    assert unlimited.max_concurrent == 0


def test_a_requests_folder_that_is_a_link_is_neither_read_nor_emptied(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    session = tmp_path / "session"
    session.mkdir()
    planted = write_request(elsewhere, "pause", "abc12_00000")
    request_dir(session).symlink_to(planted.parent)
    assert take_requests(session) == []
    assert planted.exists()
