"""`PauseState`: requests from any thread, kept until the channel exists, and the grace timer."""

import threading

from lightning_bohb.pause.state import PauseState


class RecordingChannel:
    """Stands in for `ChannelHandle`: records what the driver sent."""

    def __init__(self):
        self.sent = []

    def request_pause(self, deadline=None):
        self.sent.append("request" if deadline is None else ("request", deadline))

    def cancel_pause(self):
        self.sent.append("cancel")


def test_request_and_cancel_reach_the_channel_once_each():
    pause, channel = PauseState(), RecordingChannel()
    pause.attach(channel)
    assert pause.request_pause() and pause.pause_pending
    assert not pause.request_pause()  # asked twice: one request
    assert pause.cancel_pause() and not pause.pause_pending
    assert not pause.cancel_pause()
    assert channel.sent == ["request", "cancel"]


def test_a_request_before_the_channel_exists_is_sent_when_it_is_attached():
    pause, channel = PauseState(), RecordingChannel()
    pause.request_pause()
    assert channel.sent == []
    pause.attach(channel)
    assert channel.sent == ["request"] and pause.pause_pending


def test_quit_tells_every_listener_once_also_one_registered_later():
    pause = PauseState()
    heard = []
    pause.on_quit(lambda: heard.append("early"))
    assert pause.quit() and not pause.quit()
    pause.on_quit(lambda: heard.append("late"))
    assert pause.quit_requested and heard == ["early", "late"]


def test_the_grace_timer_quits_once_the_grace_period_passes():
    pause = PauseState(grace_period=0.05)
    quit_heard = threading.Event()
    pause.on_quit(quit_heard.set)
    pause.request_pause()
    pause.start_grace()
    assert quit_heard.wait(timeout=10)


def test_detach_cancels_the_grace_timer_and_an_infinite_grace_never_starts_one():
    pause = PauseState(grace_period=3600)
    pause.start_grace()
    pause.detach()
    assert not pause.quit_requested
    endless = PauseState()
    endless.start_grace()
    endless.detach()
    assert not endless.quit_requested
