"""The pause channel's actor body, called directly (Ray runs the same object as a threaded actor)."""

import threading

from lightning_bohb.pause.channel import HoldState, PauseChannel


def test_acks_count_only_while_a_pause_stands():
    channel = PauseChannel()
    assert not channel.acknowledge("a", 5) and channel.acknowledgements() == {}
    channel.request_pause()
    assert channel.pause_requested() and channel.acknowledge("a", 5)
    assert channel.acknowledgements() == {"a": 5}
    channel.cancel_pause()
    assert channel.acknowledgements() == {} and not channel.pause_requested()


def test_a_held_trial_learns_cancel_and_release():
    channel = PauseChannel()
    channel.request_pause()
    assert channel.wait_while_paused(0.01) is HoldState.PAUSED
    threading.Timer(0.05, channel.cancel_pause).start()
    assert channel.wait_while_paused(30) is HoldState.CANCELLED
    channel.request_pause()
    threading.Timer(0.05, channel.release).start()
    assert channel.wait_while_paused(30) is HoldState.RELEASED


def test_a_pause_carries_its_earliest_deadline_until_cancelled():
    channel = PauseChannel()
    assert channel.pause_status() == (False, None)
    channel.request_pause()
    assert channel.pause_status() == (True, None)
    channel.request_pause(50.0)
    channel.request_pause(80.0)
    assert channel.pause_status() == (True, 50.0)
    channel.note("a", "cannot checkpoint in the middle of an epoch: ...")
    assert channel.notes() == {"a": "cannot checkpoint in the middle of an epoch: ..."}
    channel.cancel_pause()
    assert channel.pause_status() == (False, None)
