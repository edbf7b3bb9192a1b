"""Keys and signals as `TuneSession` turns them into pause and quit requests (no Ray, real signals)."""

import os
import signal
import threading

import pytest

from lightning_bohb.pause.signals import SignalHandlers
from lightning_bohb.session.events import SessionListener
from lightning_bohb.session.runner import TuneSession


class Recorder(SessionListener):
    def __init__(self):
        self.events = []

    def on_pause_requested(self, session):
        self.events.append("pause")

    def on_pause_cancelled(self, session):
        self.events.append("cancel")

    def on_quit_requested(self, session):
        self.events.append("quit")


@pytest.fixture
def session(tmp_path):
    recorder = Recorder()
    session = TuneSession("t", experiment_dir=tmp_path, listener=recorder, grace_period=0.05)
    yield session
    session.pause.detach()


def test_p_toggles_and_q_quits(session):
    session.toggle_pause()
    assert session.pause.pause_pending
    session.toggle_pause()  # pressed again before the pause happened: cancelled
    assert not session.pause.pause_pending and not session.pause.quit_requested
    session.quit_now()
    session.quit_now()
    assert session.pause.quit_requested
    assert session.listener.events == ["pause", "cancel", "quit"]


def test_first_ctrl_c_pauses_second_quits(session):
    before = signal.getsignal(signal.SIGINT)
    handlers = SignalHandlers(on_pause=session.on_pause_signal, on_quit=lambda _s: session.quit_now())
    handlers.install()
    try:
        os.kill(os.getpid(), signal.SIGINT)
        assert session.pause.pause_pending and not session.pause.quit_requested
        os.kill(os.getpid(), signal.SIGINT)
        assert session.pause.quit_requested
    finally:
        handlers.restore()
    assert signal.getsignal(signal.SIGINT) is before


def test_sigterm_pauses_then_quits_after_the_grace_period(session):
    handlers = SignalHandlers(on_pause=session.on_pause_signal, on_quit=lambda _s: session.quit_now())
    handlers.install()
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        assert session.pause.pause_pending
    finally:
        handlers.restore()
    done = threading.Event()
    session.pause.on_quit(done.set)
    assert done.wait(timeout=10)  # the pause did not finish in time: quit now
    assert "quit" in session.listener.events


def test_sigusr2_quits_at_once(session):
    handlers = SignalHandlers(on_pause=session.on_pause_signal, on_quit=lambda _s: session.quit_now())
    handlers.install()
    try:
        os.kill(os.getpid(), signal.SIGUSR2)
    finally:
        handlers.restore()
    assert session.pause.quit_requested and not session.pause.pause_pending


def test_resume_command_for_script_and_console(session):
    class State:
        script = "/home/me/my project/optimize.py"

    session.state = State()
    assert session.resume_command.endswith(f"'/home/me/my project/optimize.py' --resume-session {session.session_dir}")
    State.script = None
    assert session.resume_command.endswith(f"resume {session.session_dir}") and "lightning" in session.resume_command


def test_a_plain_search_gives_ctrl_c_back_to_its_caller():
    """`tune.run` leaves its own SIGINT handler behind (it restores the caller's only when a signal
    comes); `ConfigDrivenOptimizer.run` puts the caller's back."""
    from ray.tune.tune import _setup_signal_catching

    from lightning_bohb.core.optimizer import _signal_handlers_kept

    before = signal.getsignal(signal.SIGINT)
    with _signal_handlers_kept():
        _setup_signal_catching()  # what tune.run does first
        assert signal.getsignal(signal.SIGINT) is not before
    assert signal.getsignal(signal.SIGINT) is before


def test_a_session_declares_its_fields_in_init_and_refuses_unknown_run_arguments(tmp_path):
    from lightning_bohb.cli.tune_reflow import TuneReflowCLI
    from lightning_bohb.session.runner import TuneSession

    shared = [
        name
        for name, value in vars(TuneSession).items()
        if not name.startswith("__") and not callable(value) and not isinstance(value, (property, classmethod, staticmethod))
    ]
    assert not shared  # no instance state as class attributes (a mutable one would be shared by every session)
    session = TuneSession("exp", experiment_dir=tmp_path, session_id="s")
    assert session.code_changes == [] and session.code_changes is not TuneSession("exp", experiment_dir=tmp_path).code_changes
    with pytest.raises(TypeError, match="tune_verbosity"):
        session.run(None, tune_verbosity=1)  # a misspelt option is an error, not silently dropped
    with pytest.raises(TypeError, match="calbacks"):
        TuneReflowCLI("exp", experiment_dir=tmp_path, verbose=False).run(None, calbacks=[])
