"""`PauseCoordinator`'s pause and stop decisions, on stand-in trials and a stand-in channel (no Ray)."""

import threading
from types import SimpleNamespace

from ray.tune.experiment import Trial

from lightning_bohb.pause.coordinator import PauseCoordinator
from lightning_bohb.pause.state import PauseState, StopReason


class Channel:
    def __init__(self):
        self.acks = {}
        self.released = False

    def request_pause(self, deadline=None):
        pass

    def cancel_pause(self):
        pass

    def acknowledgements(self):
        return dict(self.acks)

    def notes(self):
        return {}

    def release(self):
        self.released = True


def trial(trial_id, status=Trial.RUNNING, checkpoint_step=None, epoch=None):
    latest = None if checkpoint_step is None else SimpleNamespace(metrics={"global_step": checkpoint_step, "epoch": epoch})
    return SimpleNamespace(
        trial_id=trial_id,
        status=status,
        last_result={} if latest is None else dict(latest.metrics),
        latest_checkpoint_result=latest,
        temporary_state=SimpleNamespace(ray_actor=None),
    )


def coordinator(pause_timeout=600.0, **kwargs):
    pause, channel = PauseState(), Channel()
    pause.attach(channel)
    coord = PauseCoordinator(pause, channel, pause_timeout=pause_timeout, **kwargs)
    interrupt = threading.Event()
    coord.attach_interrupt(interrupt)
    return coord, pause, channel, interrupt


def test_no_pause_requested_runs_on():
    coord, _, channel, interrupt = coordinator()
    coord.on_step_end(0, [trial("a")])
    assert coord.stop_reason is None and not interrupt.is_set() and not channel.released


def test_waits_for_every_running_trial_to_ack_with_its_checkpoint_registered():
    coord, pause, channel, interrupt = coordinator()
    pause.request_pause()
    a, b, done = trial("a", checkpoint_step=10), trial("b", checkpoint_step=4), trial("c", status=Trial.TERMINATED)
    channel.acks = {"a": 10}
    coord.on_step_end(1, [a, b, done])
    assert coord.waiting == ["b"] and coord.stop_reason is None
    channel.acks["b"] = 8  # acked at step 8, but Tune still holds the checkpoint of step 4
    coord.on_step_end(2, [a, b, done])
    assert coord.waiting == ["b"] and not interrupt.is_set()
    b.latest_checkpoint_result.metrics["global_step"] = 8
    coord.on_step_end(3, [a, b, done])
    assert coord.stop_reason == StopReason.PAUSED and interrupt.is_set() and channel.released
    assert [coord.status_of(t) for t in (a, b, done)] == [Trial.PAUSED, Trial.PAUSED, Trial.TERMINATED]
    a.status = b.status = Trial.TERMINATED  # what Tune's cleanup does next
    assert coord.status_of(a) == Trial.PAUSED


def test_a_trial_stopped_before_it_reported_shows_pending_not_terminated():
    coord, pause, channel, _ = coordinator()
    pause.request_pause()
    starting = trial("new")
    channel.acks = {"new": None}
    coord.on_step_end(0, [starting])
    starting.status = Trial.TERMINATED  # Tune's cleanup
    assert coord.status_of(starting) == Trial.PENDING


def test_a_trial_held_before_its_first_epoch_needs_no_checkpoint():
    coord, pause, channel, _ = coordinator()
    pause.request_pause()
    channel.acks = {"a": None}
    coord.on_step_end(0, [trial("a")])
    assert coord.stop_reason == StopReason.PAUSED


def test_pause_timeout_stops_the_trials_that_did_not_reach_validation():
    coord, pause, channel, _ = coordinator(pause_timeout=5)
    pause.request_pause()
    pause.requested_at -= 10
    coord.on_step_end(0, [trial("slow", checkpoint_step=3, epoch=1), trial("new")])
    assert coord.stop_reason == StopReason.PAUSED
    assert coord.timed_out == {"slow": 1, "new": None}


def test_quit_ends_the_loop_at_once_even_asked_before_setup():
    pause = PauseState()
    pause.quit()
    coord = PauseCoordinator(pause, Channel(), pause_timeout=600)
    interrupt = threading.Event()
    coord.attach_interrupt(interrupt)
    assert interrupt.is_set() and coord.interrupted
    coord.on_step_end(0, [trial("a")])
    assert coord.stop_reason == StopReason.QUIT


def test_auto_pause_and_deadline_request_a_pause():
    coord, pause, _, _ = coordinator(auto_pause=lambda metrics: metrics["val_loss"] < 0.1)
    coord.on_trial_result(0, [], trial("a"), {"val_loss": 0.5})
    assert not pause.pause_pending
    coord.on_trial_result(0, [], trial("a"), {"val_loss": 0.05})
    assert pause.pause_pending
    coord2, pause2, _, _ = coordinator(pause_deadline=0.0)
    coord2.on_step_end(0, [])
    assert pause2.pause_pending and coord2.pause_deadline is None


def test_the_pause_counts_every_running_trial_until_it_has_checked_them():
    coord, pause, channel, _ = coordinator()
    a, b, done = trial("a", checkpoint_step=3), trial("b", checkpoint_step=3), trial("c", status=Trial.TERMINATED)
    coord.on_step_end(0, [a, b, done])
    assert coord.waiting == []  # no pause asked
    pause.request_pause()  # between two steps of Tune's loop: not checked yet
    assert coord.waiting == ["a", "b"]
    channel.acks = {"a": 3}
    coord.on_step_end(1, [a, b, done])
    assert coord.waiting == ["b"]
    pause.cancel_pause()
    coord.on_step_end(2, [a, b, done])
    assert coord.waiting == []


def test_a_real_trial_that_never_reported_starts_over_rather_than_showing_paused():
    coord, pause, channel, _ = coordinator()
    started_late = Trial("fn", config={}, trial_id="late", stub=True)  # Tune's last_result: {"trial_id": ...}, never empty
    started_late.set_status(Trial.RUNNING)
    assert started_late.last_result
    pause.request_pause()
    channel.acks = {"late": None}  # held before its first epoch
    coord.on_step_end(0, [started_late])
    assert coord.stop_reason == StopReason.PAUSED
    assert coord.status_of(started_late) == Trial.PENDING


def test_no_trial_starts_while_a_pause_is_pending():
    from ray.tune.schedulers import FIFOScheduler

    from lightning_bohb._ray import scheduler_hooks

    coord, pause, _, _ = coordinator()
    scheduler = FIFOScheduler()
    scheduler_hooks.hold_trials(scheduler, coord)
    waiting = Trial("fn", config={}, trial_id="next", stub=True)
    controller = SimpleNamespace(get_trials=lambda: [waiting], get_live_trials=lambda: [waiting])
    assert scheduler.choose_trial_to_run(controller) is waiting
    pause.request_pause()
    assert scheduler.choose_trial_to_run(controller) is None
    pause.cancel_pause()
    assert scheduler.choose_trial_to_run(controller) is waiting


def test_every_step_checks_the_driver_still_owns_the_session_also_while_pausing():
    import pytest

    from lightning_bohb.exceptions import SessionLockLost

    lost = []

    def check_owned():
        if lost:
            raise SessionLockLost("taken over")

    coord, pause, channel, interrupt = coordinator(check_owned=check_owned)
    coord.on_step_end(0, [trial("a")])
    pause.request_pause()
    coord.on_step_end(1, [trial("a")])  # pausing: waits for the trial's checkpoint
    lost.append(True)
    with pytest.raises(SessionLockLost):  # Tune's loop ends on it, at once
        coord.on_step_end(2, [trial("a")])
    with pytest.raises(SessionLockLost):  # and on a result, before Tune lets its trial train on
        coord.on_trial_result(3, [trial("a")], trial("a"), {"val_loss": 0.5, "training_iteration": 2})


def test_the_live_tables_pause_line_counts_the_running_trials_and_never_0_while_they_run(tmp_path):
    from lightning_bohb.cli.tune_reflow import TuneReflowCLI

    cli = TuneReflowCLI("pause_line", experiment_dir=tmp_path, verbose=False)
    coord = PauseCoordinator(cli.session.pause, Channel(), pause_timeout=600)
    coord.attach_interrupt(threading.Event())
    cli.session.coordinator = coord
    a, b = trial("a", checkpoint_step=3), trial("b", checkpoint_step=3)
    coord.on_step_end(0, [a, b])
    assert cli._pause_line().startswith("p: pause")
    cli.session.request_pause()
    assert cli._pause_line() == "pause requested: waiting for 2 trials to reach validation"
    coord.control.acks = {"a": 3, "b": 3}
    coord.on_step_end(1, [a, b])
    assert coord.stop_reason == StopReason.PAUSED
    assert cli._pause_line().startswith("pausing: saving the session")
