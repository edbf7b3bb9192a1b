"""Pause and resume the example script for real: keys in a pseudo-terminal, signals, moved sessions.

Each test pauses a seeded 2-trial search (both trials running side by side) and resumes it with the
printed command; the result must equal the uninterrupted run bitwise, with no epoch trained twice
and every epoch-end hook run once.
"""

import os
import shutil
import signal

from e2e_support import (
    assert_resumed_exactly,
    first_checkpoint_exists,
    parse_session_id,
    paused_exit,
    resume,
    resume_argv,
    session_dir_of,
    start_search,
    wait_until,
    write_config,
)


def _setup(tmp_path):
    record_dir = tmp_path / "records"
    record_dir.mkdir()
    return record_dir, ["--base-config", str(write_config(tmp_path, record_dir))]


def _wait_for_first_checkpoint(tmp_path):
    wait_until(lambda: first_checkpoint_exists(tmp_path / "experiments"), 180, "the first trial checkpoint")


def _finish(argv, cwd):
    run = resume(argv, cwd)
    assert run.wait() == 0, run.output[-3000:]
    assert "Resuming session" in run.output
    return run


def test_p_key_in_terminal_pauses_and_printed_command_resumes(tmp_path, uninterrupted):
    record_dir, args = _setup(tmp_path)
    run = start_search(tmp_path, args, use_pty=True)
    run.wait_for_text("Interactive mode enabled")
    assert "Press 'p' to pause at next validation" in run.output
    _wait_for_first_checkpoint(tmp_path)
    run.press("pp")  # a second press before the pause happens cancels it
    run.wait_for_text("Pause cancelled")
    run.press("p")
    output = paused_exit(run)
    assert output.count("Pause requested") == 2
    session = session_dir_of(tmp_path / "experiments")
    assert parse_session_id(output) in session.name
    _finish(resume_argv(output), tmp_path)
    assert_resumed_exactly(session, record_dir, uninterrupted)


def test_ctrl_c_then_sigterm_pause_twice_in_a_row(tmp_path, uninterrupted):
    record_dir, args = _setup(tmp_path)
    run = start_search(tmp_path, args)
    _wait_for_first_checkpoint(tmp_path)
    run.proc.send_signal(signal.SIGINT)
    output = paused_exit(run)
    session = session_dir_of(tmp_path / "experiments")
    ckpts_before = set(session.glob("tune/*/checkpoint_*"))

    second = resume(resume_argv(output), tmp_path)
    # Pause again once the resumed session has trained a new epoch.
    wait_until(lambda: set(session.glob("tune/*/checkpoint_*")) - ckpts_before, 180, "a new checkpoint after resume")
    second.proc.send_signal(signal.SIGTERM)
    output = paused_exit(second)
    assert "pause_count: 2" in (session / "session_state.summary.yaml").read_text()

    _finish(resume_argv(output), tmp_path)
    assert_resumed_exactly(session, record_dir, uninterrupted)


def test_resume_after_session_directory_moved(tmp_path, uninterrupted):
    record_dir, args = _setup(tmp_path)
    run = start_search(tmp_path, args)
    _wait_for_first_checkpoint(tmp_path)
    os.kill(run.proc.pid, signal.SIGUSR1)
    output = paused_exit(run)
    session = session_dir_of(tmp_path / "experiments")
    moved = tmp_path / "elsewhere" / session.name
    moved.parent.mkdir()
    shutil.move(str(session), str(moved))

    argv = resume_argv(output)
    argv[argv.index(str(session))] = str(moved)
    _finish(argv, tmp_path)
    assert_resumed_exactly(moved, record_dir, uninterrupted)
