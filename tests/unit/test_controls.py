"""Keyboard and signal semantics of TuneReflowCLI, on a stand-in coordinator (no Ray)."""

import signal
import threading

from lightning_bohb.cli.tune_reflow import TuneReflowCLI


class Coordinator:
    def __init__(self):
        self.pause_pending = False
        self.stop_reason = None
        self.quit = threading.Event()

    def request_pause(self):
        self.pause_pending = True

    def cancel_pause(self):
        self.pause_pending = False

    def quit_now(self):
        self.stop_reason = "quit"
        self.quit.set()


def _cli(tmp_path, **kwargs):
    cli = TuneReflowCLI("t", experiment_dir=tmp_path, verbose=False, **kwargs)
    cli._coordinator = Coordinator()
    return cli


def test_p_toggles_and_q_quits(tmp_path):
    cli = _cli(tmp_path)
    cli.toggle_pause()
    assert cli.pause_requested
    cli.toggle_pause()  # pressed again before the pause happened: cancelled
    assert not cli.pause_requested and cli._coordinator.stop_reason is None
    cli.quit_now()
    assert cli._coordinator.stop_reason == "quit"


def test_first_ctrl_c_pauses_second_quits(tmp_path):
    cli = _cli(tmp_path)
    cli._on_pause_signal(signal.SIGINT)
    assert cli.pause_requested and cli._coordinator.stop_reason is None
    cli._on_pause_signal(signal.SIGINT)
    assert cli._coordinator.stop_reason == "quit"


def test_sigterm_pauses_then_quits_after_the_grace_period(tmp_path):
    cli = _cli(tmp_path, grace_period=0.2)
    cli._on_pause_signal(signal.SIGTERM)
    assert cli.pause_requested and cli._coordinator.stop_reason is None
    assert cli._coordinator.quit.wait(timeout=10)  # the pause did not finish in time: quit now


def test_requests_before_tune_starts_are_kept(tmp_path):
    cli = TuneReflowCLI("t", experiment_dir=tmp_path, verbose=False)
    cli.request_pause()
    cli._coordinator = Coordinator()
    cli._early_request()
    assert cli.pause_requested


def test_resume_command_for_script_and_console(tmp_path):
    cli = _cli(tmp_path)

    class State:
        script = "/home/me/my project/optimize.py"

    cli.state = State()
    assert cli.resume_command.endswith(f"'/home/me/my project/optimize.py' --resume-session {cli.session_dir}")
    State.script = None
    assert cli.resume_command.endswith(f"resume {cli.session_dir}") and "lightning" in cli.resume_command
