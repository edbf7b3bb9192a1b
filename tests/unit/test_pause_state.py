"""`PauseState`: requests from any thread, kept until the channel exists, and the grace timer."""

import threading
import time

import pytest

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


def test_a_deadline_reaches_the_channel_and_an_earlier_one_replaces_it():
    pause, channel = PauseState(), RecordingChannel()
    pause.attach(channel)
    assert pause.request_pause() and pause.deadline is None
    assert not pause.request_pause(deadline=200.0)  # a pause already pending gets the deadline
    assert not pause.request_pause(deadline=300.0)  # a later one changes nothing
    assert not pause.request_pause(deadline=100.0)
    assert channel.sent == ["request", ("request", 200.0), ("request", 100.0)] and pause.deadline == 100.0
    assert pause.cancel_pause() and pause.deadline is None


def test_the_grace_period_is_the_pending_pause_s_deadline_and_within_replaces_it(tmp_path):
    import time

    from lightning_bohb.pause.state import take_pause_within, write_pause_within

    pause = PauseState(grace_period=3600)
    before = time.time()
    pause.start_grace(lambda: None)
    assert pause.pause_pending and before + 3600 <= pause.deadline <= time.time() + 3600
    pause.detach()
    write_pause_within(tmp_path, 60)
    deadline = take_pause_within(tmp_path)
    assert before + 60 <= deadline <= time.time() + 60 and take_pause_within(tmp_path) is None  # read once
    within = PauseState(grace_period=3600)
    within.start_grace(lambda: None, within=5.0)
    assert within.deadline <= time.time() + 5.0
    within.detach()


@pytest.mark.parametrize("planted", ["fifo", "symlink", "nan", "huge"])
def test_a_planted_pause_within_file_neither_hangs_nor_is_followed(tmp_path, planted):
    import json
    import os
    import threading

    from lightning_bohb.pause.state import take_pause_within
    from lightning_bohb.utils.layout import PAUSE_WITHIN_FILE

    path = tmp_path / PAUSE_WITHIN_FILE
    outside = tmp_path / "elsewhere.json"
    outside.write_text(json.dumps({"deadline": time.time() + 60}))
    if planted == "fifo":
        os.mkfifo(path)  # opened plainly, this blocks the driver's signal handler for good
    elif planted == "symlink":
        path.symlink_to(outside)
    elif planted == "nan":
        path.write_text('{"deadline": NaN}')
    else:
        path.write_text(json.dumps({"deadline": time.time() + 60, "pad": "x" * 100_000}))
    found = []
    reader = threading.Thread(target=lambda: found.append(take_pause_within(tmp_path)), daemon=True)
    reader.start()
    reader.join(timeout=10)
    if reader.is_alive():  # unblock the reader so the test ends
        with open(path, "w"):
            pass
        reader.join(timeout=10)
        pytest.fail("take_pause_within hung on a FIFO")
    assert found == [None] and outside.exists()
