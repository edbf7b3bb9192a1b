"""The pause channel's actor body, called directly (Ray runs the same object as a threaded actor)."""

import threading

import pytest

from lightning_bohb.pause.channel import HoldState, PauseChannel

KEY = "k" * 32


def test_acks_count_only_while_a_pause_stands():
    channel = PauseChannel(KEY)
    assert not channel.acknowledge(KEY, "a", 5) and channel.acknowledgements() == {}
    channel.request_pause(KEY)
    assert channel.pause_requested() and channel.acknowledge(KEY, "a", 5)
    assert channel.acknowledgements() == {"a": 5}
    channel.cancel_pause(KEY)
    assert channel.acknowledgements() == {} and not channel.pause_requested()


def test_a_held_trial_learns_cancel_and_release():
    channel = PauseChannel(KEY)
    channel.request_pause(KEY)
    assert channel.wait_while_paused(0.01) is HoldState.PAUSED
    threading.Timer(0.05, channel.cancel_pause, [KEY]).start()
    assert channel.wait_while_paused(30) is HoldState.CANCELLED
    channel.request_pause(KEY)
    threading.Timer(0.05, channel.release, [KEY]).start()
    assert channel.wait_while_paused(30) is HoldState.RELEASED


def test_a_pause_carries_its_earliest_deadline_until_cancelled():
    channel = PauseChannel(KEY)
    assert channel.pause_status() == (False, None)
    channel.request_pause(KEY)
    assert channel.pause_status() == (True, None)
    channel.request_pause(KEY, 50.0)
    channel.request_pause(KEY, 80.0)
    assert channel.pause_status() == (True, 50.0)
    channel.note(KEY, "a", "cannot checkpoint in the middle of an epoch: ...")
    assert channel.notes() == {"a": "cannot checkpoint in the middle of an epoch: ..."}
    channel.cancel_pause(KEY)
    assert channel.pause_status() == (False, None)


def test_every_call_that_changes_the_channel_needs_the_session_key():
    channel = PauseChannel(KEY)
    for wrong in ("", "k" * 31, None, "x" * 32):
        for name, *args in (
            ("request_pause", wrong),
            ("cancel_pause", wrong),
            ("release", wrong),
            ("acknowledge", wrong, "a", 1),
            ("note", wrong, "a", "why"),
            ("open_requests", wrong, "s", "t" * 32, "h", 1),
            ("next_request", wrong, 0.01),
            ("close_requests", wrong),
        ):
            with pytest.raises(PermissionError, match="refused"):
                getattr(channel, name)(*args)
    assert channel.pause_status() == (False, None) and channel.acknowledgements() == {} and channel.notes() == {}
    assert channel.wait_while_paused(0.01) is HoldState.CANCELLED  # not released
    channel.open_requests(KEY, "s", "t" * 32, "h", 1)
    with pytest.raises(PermissionError, match="open already"):  # the token is given once, by the driver
        channel.open_requests(KEY, "s", "u" * 32, "h", 1)
    assert channel.request("t" * 32, "pause") and not channel.request("u" * 32, "pause")
