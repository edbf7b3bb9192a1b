"""Pause one trial, continue it later: it frees its slot, shows PAUSED, survives a session pause and
resume, and continues exactly (per-epoch metrics equal to a trial never paused; each epoch once)."""

import subprocess
import sys

from e2e_support import (
    ScriptRun,
    assert_resumed_exactly,
    epoch_end_counts,
    paused_exit,
    resume_argv,
    script_env,
    session_dir_of,
    start_search,
    trial_histories,
    trials,
    wait_until,
    write_config,
)


def console(*args, cwd, timeout=180):
    argv = [sys.executable, "-m", "lightning_bohb", *map(str, args)]
    return subprocess.run(argv, cwd=cwd, env=script_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)


def status(session, trial_id):
    return trials(session).get(trial_id, {}).get("status")


def first_trial_after_an_epoch(experiments):
    def found():
        try:
            session = session_dir_of(experiments)
        except ValueError:
            return None
        running = [t for t in trials(session).values() if t["status"] == "RUNNING" and t["epochs"] >= 1]
        return (session, running[0]["id"]) if running else None

    return wait_until(found, 240, "a trial that finished an epoch")


def pause_trial(session, trial_id, cwd):
    paused = console("trial", "pause", session, trial_id, cwd=cwd)
    assert paused.returncode == 0, paused.stdout + paused.stderr
    assert f"Trial {trial_id} pauses at its next validated epoch end" in paused.stdout


def test_a_paused_trial_frees_its_slot_survives_a_session_pause_and_continues_exactly(tmp_path, uninterrupted):
    record_dir = tmp_path / "records"
    record_dir.mkdir()
    config = write_config(tmp_path, record_dir, min_epoch_seconds=2.0)
    experiments = tmp_path / "experiments"
    # One trial at a time: the second one can only start once the first frees its slot.
    run = start_search(tmp_path, ["--base-config", str(config), "--max-concurrent-trials", "1"])
    resumed = None
    try:
        session, held = first_trial_after_an_epoch(experiments)
        pause_trial(session, held, tmp_path)
        def others_running():
            running = [t for t, row in trials(session).items() if t != held and row["status"] == "RUNNING"]
            return status(session, held) == "PAUSED" and running

        others = wait_until(others_running, 180, "the paused trial's slot taken by the other trial")
        assert trials(session)[held]["epochs"] < 4

        paused = console("pause", session, "--timeout", "120", cwd=tmp_path)  # the whole session now
        assert paused.returncode == 0, paused.stdout + paused.stderr
        output = paused_exit(run)
        assert f"trial {held} paused on request after" in output
        assert trials(session)[held]["status"] == "PAUSED"

        resumed = ScriptRun(resume_argv(output), cwd=tmp_path)
        other = others[0]
        wait_until(lambda: status(session, other) == "TERMINATED" or resumed.proc.poll() is not None, 240, "the other trial to finish")
        assert resumed.proc.poll() is None, resumed.output[-3000:]
        assert trials(session)[held]["status"] == "PAUSED"  # held across the session's pause and resume
        epochs_while_held = trials(session)[held]["epochs"]

        continued = console("trial", "continue", session, held, cwd=tmp_path)
        assert continued.returncode == 0, continued.stdout + continued.stderr
        assert resumed.wait(timeout=300) == 0, resumed.output[-3000:]
    finally:
        for process in (run, resumed):
            if process is not None and process.proc.poll() is None:
                process.proc.kill()
    assert f"trial {held} continues from epoch {epochs_while_held}" in resumed.output
    assert_resumed_exactly(session, record_dir, uninterrupted)


def test_asha_sees_a_paused_trial_as_time_passing_not_as_a_result(tmp_path, uninterrupted):
    record_dir = tmp_path / "records"
    record_dir.mkdir()
    config = write_config(tmp_path, record_dir, min_epoch_seconds=2.0)
    experiments = tmp_path / "experiments"
    run = start_search(tmp_path, ["--base-config", str(config), "--strategy", "asha", "--max-concurrent-trials", "1"])
    try:
        session, held = first_trial_after_an_epoch(experiments)
        pause_trial(session, held, tmp_path)
        wait_until(lambda: status(session, held) == "PAUSED", 120, "the trial to pause")
        def others_ended():
            return len(trials(session)) == 2 and all(row["status"] == "TERMINATED" for t, row in trials(session).items() if t != held)

        wait_until(others_ended, 240, "the other trial to end")
        assert trials(session)[held]["status"] == "PAUSED"
        continued = console("trial", "continue", session, held, cwd=tmp_path)
        assert continued.returncode == 0, continued.stdout + continued.stderr
        assert run.wait(timeout=300) == 0, run.output[-3000:]
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
    histories = trial_histories(session / "tune")
    assert set(histories) == set(uninterrupted)
    for key, history in histories.items():
        # Each epoch once, in order, equal to the never-paused trial's; ASHA may end a trial at a rung.
        assert [row[0] for row in history] == list(range(len(history)))
        assert history == uninterrupted[key][: len(history)], key
    counts = epoch_end_counts(record_dir)
    assert counts and all(n == 1 for n in counts.values()), counts
    assert f"trial {held} paused on request after" in run.output
    assert f"trial {held} continues from epoch" in run.output
