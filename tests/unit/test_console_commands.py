"""``lightning-bohb status/list/clean/export-best/pause/resume`` against synthetic session folders (no Ray)."""

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from lightning_bohb.cli.commands import clean as clean_command
from lightning_bohb.cli.main import main
from lightning_bohb.core.optimization_config import parse_duration
from lightning_bohb.session import backend
from lightning_bohb.session.lock import SessionLock
from lightning_bohb.utils.layout import LOCK_FILE, SUMMARY_FILE

DEAD_PID = 2**22 + 12345  # above Linux's pid_max: never a live process


def make_session(
    root: Path,
    experiment="digits",
    session_id="20240101_000000_abcdef",
    status="PAUSED",
    updated_at="2024-01-01T01:00:00",
    trials=None,
    best=True,
    flat=False,
    **extra,
) -> Path:
    """Write a session folder holding only a summary, as TuneReflowCLI writes it."""
    session = (root if flat else root / experiment) / f"session_{session_id}"
    session.mkdir(parents=True)
    if trials is None:
        trials = [
            {"id": "t_00000", "status": "TERMINATED", "config": {"lr": 0.00123456, "hidden_size": 32},
             "epochs": 3, "last": 0.51234, "best": 0.41234},
            {"id": "t_00001", "status": "RUNNING", "config": {"lr": 0.0421, "hidden_size": 16}, "epochs": 1, "last": 1.5, "best": 1.5},
        ]
    summary = {
        "schema_version": 1,
        "session_id": session_id,
        "experiment_name": experiment,
        "status": status,
        "started_at": "2024-01-01T00:00:00",
        "updated_at": updated_at,
        "paused_at": "2024-01-01T00:30:00" if status == "PAUSED" else None,
        "pause_count": 1 if status == "PAUSED" else 0,
        "resumed_at": [],
        "strategy": {"name": "bohb", "grace_period": 1, "reduction_factor": 3, "max_t": None, "seed": None},
        "search_space": {"lr": "loguniform(0.0001, 0.1)", "hidden_size": "choice([16, 32])"},
        "metric": {"metric": "val_loss", "mode": "min"},
        "num_samples": 4,
        # a copy of the config: no YAML alias
        "best": {"trial": "t_00000", "val_loss": 0.41234, "config": dict(trials[0]["config"])} if best and trials else None,
        "trials": trials,
        "resume_command": f"lightning-bohb resume {session}",
        **extra,
    }
    if updated_at is None:
        del summary["updated_at"]
    (session / SUMMARY_FILE).write_text(yaml.safe_dump(summary, sort_keys=False))
    return session


def write_lock(session: Path, pid: int, host=None) -> None:
    (session / LOCK_FILE).write_text(json.dumps({"pid": pid, "host": host or socket.gethostname(), "since": time.time()}))


def run_main(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# -- status ------------------------------------------------------------------------------------
def test_status_shows_state_trials_and_best(tmp_path, capsys):
    session = make_session(tmp_path)
    code, out, err = run_main(capsys, "status", session)
    assert code == 0, err
    assert "State:       PAUSED" in out
    assert "Pauses:      1" in out and "Last paused: 2024-01-01T00:30:00" in out
    assert "Strategy:    bohb (grace_period=1, reduction_factor=3)" in out
    assert "Trials:      1/4 done, 2 started" in out
    row = next(line for line in out.splitlines() if line.startswith("t_00000"))
    assert row.split()[:5] == ["t_00000", "finished", "3", "0.5123", "0.4123"]  # no time recorded: an empty cell
    assert "lr=0.001235, hidden_size=32" in row
    assert "Best so far: trial t_00000  val_loss=0.4123  lr=0.001235, hidden_size=32" in out
    assert f"Resume with: lightning-bohb resume {session}" in out
    assert all(line == line.rstrip() for line in out.splitlines())


def test_status_tells_stopped_early_from_finished_and_shows_each_trials_time(tmp_path, capsys):
    trials = [
        {"id": "t_00000", "status": "TERMINATED", "config": {"lr": 0.001}, "epochs": 4, "last": 0.5, "best": 0.4, "time_s": 75.0},
        {"id": "t_00001", "status": "TERMINATED", "config": {"lr": 0.01}, "epochs": 1, "last": 0.9, "best": 0.9, "time_s": 9.5},
        {"id": "t_00002", "status": "PAUSED", "config": {"lr": 0.1}, "epochs": 2, "last": 0.7, "best": 0.7, "time_s": 3725.0},
        {"id": "t_00003", "status": "PAUSED", "config": {"lr": 0.2}, "epochs": 2, "last": 0.8, "best": 0.8, "time_s": 20.0},
    ]
    pause = {"pause_requested": False, "held_trials": ["t_00002"], "pausing_trials": []}
    session = make_session(tmp_path, trials=trials, max_epochs=4, pause=pause)
    out = run_main(capsys, "status", session)[1]
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("t_0000")}
    assert rows["t_00000"][1:4] == ["finished", "4", "0:01:15"]
    assert rows["t_00001"][1:5] == ["stopped", "early", "1", "0:00:09"]
    assert rows["t_00002"][1:6] == ["paused", "on", "request", "2", "1:02:05"]
    assert rows["t_00003"][1:4] == ["paused", "2", "0:00:20"]  # paused with the session
    assert "TIME" in out


def test_status_json_is_the_summary(tmp_path, capsys):
    session = make_session(tmp_path)
    code, out, _ = run_main(capsys, "status", session, "--json")
    assert code == 0
    assert json.loads(out) == yaml.safe_load((session / SUMMARY_FILE).read_text())


def test_status_marks_running_session_without_live_driver_as_stale(tmp_path, capsys):
    live = make_session(tmp_path, session_id="live", status="RUNNING")
    write_lock(live, os.getpid())
    stale = make_session(tmp_path, session_id="stale", status="RUNNING")
    write_lock(stale, DEAD_PID)
    assert "State:       RUNNING\n" in run_main(capsys, "status", live)[1]
    out = run_main(capsys, "status", stale)[1]
    assert "State:       RUNNING (stale: driver gone)" in out and "Resume with:" in out


def test_status_of_missing_session_is_an_error(tmp_path, capsys):
    code, out, err = run_main(capsys, "status", tmp_path / "nope")
    assert code == 1 and out == ""
    assert err.startswith("error: No session summary at ") and "Traceback" not in err


def test_status_and_list_import_neither_ray_nor_torch(tmp_path):
    session = make_session(tmp_path)
    code = textwrap.dedent(
        f"""
        import sys
        from lightning_bohb.cli.main import main
        assert main(["status", {str(session)!r}]) == 0
        assert main(["list", {str(tmp_path)!r}]) == 0
        heavy = [m for m in ("ray", "torch", "lightning", "cloudpickle") if m in sys.modules]
        assert not heavy, heavy
        """
    )
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "PAUSED" in result.stdout
    assert time.monotonic() - start < 5  # typically ~0.4 s; generous for a loaded CI machine


# -- list --------------------------------------------------------------------------------------
def test_list_one_line_per_session_with_stale_marker(tmp_path, capsys):
    make_session(tmp_path, session_id="a_paused", status="PAUSED")
    make_session(tmp_path, experiment="other", session_id="b_done", status="COMPLETED")
    stale = make_session(tmp_path, session_id="c_stale", status="RUNNING")
    write_lock(stale, DEAD_PID)
    make_session(tmp_path, session_id="d_flat", status="FAILED", flat=True)
    broken = tmp_path / "digits" / "session_e_broken"
    broken.mkdir()
    (broken / SUMMARY_FILE).write_text("[not a mapping")
    (tmp_path / "digits" / "not_a_session").mkdir()

    code, out, err = run_main(capsys, "list", tmp_path)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["SESSION", "STATE", "STARTED", "LAST", "PAUSED", "TRIALS", "BEST"]

    def line(name):
        (found,) = [line for line in lines if line.startswith(name)]
        return found

    assert line("digits/session_a_paused").split()[1:] == ["PAUSED", "2024-01-01T00:00:00", "2024-01-01T00:30:00", "1/4", "val_loss=0.4123"]
    assert line("other/session_b_done").split()[1] == "COMPLETED"
    assert "RUNNING (stale: driver gone)" in line("digits/session_c_stale")
    assert line("session_d_flat").split()[1] == "FAILED"
    assert "UNREADABLE" in line("digits/session_e_broken")
    assert len(lines) == 2 + 5


def test_list_100_sessions_under_a_second(tmp_path, capsys):
    for i in range(100):
        status = "RUNNING" if i % 10 == 0 else "PAUSED"
        session = make_session(tmp_path, experiment=f"exp{i % 5}", session_id=f"2024_{i:03d}", status=status)
        if i % 10 == 0:
            write_lock(session, DEAD_PID)
    start, start_cpu = time.perf_counter(), time.process_time()
    code = main(["list", str(tmp_path)])
    elapsed, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    out = capsys.readouterr().out
    assert code == 0
    assert len(out.splitlines()) == 102 and out.count("stale: driver gone") == 10
    # CPU time: what list costs, whatever else the machine runs (wall time is typically ~0.3 s).
    assert cpu < 1.0, f"list took {cpu:.2f} s of CPU ({elapsed:.2f} s wall) for 100 sessions"


def test_list_empty_and_missing_folders(tmp_path, capsys):
    assert run_main(capsys, "list", tmp_path)[1] == f"No sessions under {tmp_path}.\n"
    code, _, err = run_main(capsys, "list", tmp_path / "missing")
    assert code == 1 and err.startswith("error: Experiment folder not found")


def test_list_defaults_to_experiments_in_working_directory(tmp_path, capsys, monkeypatch):
    make_session(tmp_path / "experiments")
    monkeypatch.chdir(tmp_path)
    assert "digits/session_20240101_000000_abcdef" in run_main(capsys, "list")[1]


# -- clean -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, seconds", [("30d", 30 * 86400), ("12h", 43200), ("90m", 5400), ("45s", 45), ("2w", 1209600), ("1.5h", 5400), ("10", 10)]
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "d", "3x", "-1d", "1 day"])
def test_bad_duration_is_a_usage_error(tmp_path, capsys, text):
    code, _, err = run_main(capsys, "clean", tmp_path, "--older-than", text)
    assert code == 2 and "--older-than" in err


def old_and_new_sessions(root):
    recent = time.strftime("%Y-%m-%dT%H:%M:%S")
    sessions = {
        "old_paused": make_session(root, session_id="old_paused", status="PAUSED"),
        "old_done": make_session(root, session_id="old_done", status="COMPLETED"),
        "old_failed": make_session(root, session_id="old_failed", status="FAILED", flat=True),
        "old_running": make_session(root, session_id="old_running", status="RUNNING"),
        "old_locked": make_session(root, session_id="old_locked", status="PAUSED"),
        "new_paused": make_session(root, session_id="new_paused", status="PAUSED", updated_at=recent),
        "old_by_mtime": make_session(root, session_id="old_by_mtime", status="COMPLETED", updated_at=None),
        "new_by_mtime": make_session(root, session_id="new_by_mtime", status="COMPLETED", updated_at=None),
    }
    write_lock(sessions["old_locked"], os.getpid())  # a live driver: never removed
    write_lock(sessions["old_running"], DEAD_PID)
    month_ago = time.time() - 40 * 86400
    os.utime(sessions["old_by_mtime"] / SUMMARY_FILE, (month_ago, month_ago))
    return sessions


def test_clean_removes_old_finished_sessions_only(tmp_path, capsys):
    sessions = old_and_new_sessions(tmp_path)
    code, out, err = run_main(capsys, "clean", tmp_path, "--older-than", "30d")
    assert code == 0, err
    removed = {"old_paused", "old_done", "old_failed", "old_by_mtime"}
    for name, session in sessions.items():
        assert session.exists() == (name not in removed), name
        assert (f"removing {session}" in out) == (name in removed), out
    assert "Removed 4 sessions; kept 4." in out


def test_clean_dry_run_removes_nothing(tmp_path, capsys):
    sessions = old_and_new_sessions(tmp_path)
    code, out, _ = run_main(capsys, "clean", tmp_path, "--older-than", "30d", "--dry-run")
    assert code == 0
    assert all(session.exists() for session in sessions.values())
    assert out.count("would remove ") == 4 and "Would remove 4 sessions; kept 4." in out


def test_clean_requires_older_than(tmp_path, capsys):
    code, _, err = run_main(capsys, "clean", tmp_path)
    assert code == 2 and "--older-than" in err


def test_clean_never_follows_a_link_out_of_the_experiment_folder(tmp_path, capsys):
    root, elsewhere = tmp_path / "experiments", tmp_path / "elsewhere"
    behind_linked_folder = make_session(elsewhere, experiment="kept", session_id="behind_link")
    (root / "exp").mkdir(parents=True)
    (root / "linked").symlink_to(elsewhere / "kept")  # an experiment folder that is a link
    linked_session = make_session(elsewhere, experiment="other", session_id="linked")
    (root / "exp" / "session_linked").symlink_to(linked_session)  # a session that is a link
    plain = make_session(root, experiment="exp", session_id="plain")
    code, out, err = run_main(capsys, "clean", root, "--older-than", "1d")
    assert code == 0, err
    assert behind_linked_folder.is_dir() and linked_session.is_dir() and not plain.exists()
    assert (root / "linked").is_symlink() and (root / "exp" / "session_linked").is_symlink()
    assert f"note: skipping {root / 'linked' / 'session_behind_link'}: {root / 'linked'} is a symbolic link" in err
    assert f"note: skipping {root / 'exp' / 'session_linked'}: {root / 'exp' / 'session_linked'} is a symbolic link" in err
    assert "Removed 1 session; kept 2." in out and "Traceback" not in err


def test_clean_reports_a_session_it_cannot_remove_and_goes_on(tmp_path, capsys, monkeypatch):
    first, second = make_session(tmp_path, session_id="a_first"), make_session(tmp_path, session_id="b_second")
    rmtree = shutil.rmtree

    def failing_rmtree(path, *args, **kwargs):
        if Path(path) == first:
            raise PermissionError(13, "Permission denied", str(path))
        return rmtree(path, *args, **kwargs)

    monkeypatch.setattr(backend.shutil, "rmtree", failing_rmtree)
    code, out, err = run_main(capsys, "clean", tmp_path, "--older-than", "1d")
    assert code == 1 and first.is_dir() and not second.exists()
    assert f"warning: could not remove {first}: [Errno 13] Permission denied" in err
    assert err.splitlines()[-1] == "error: Could not remove 1 session (see the warnings above); the others were cleaned."
    assert "Removed 1 session; kept 0." in out and "Traceback" not in err
    assert not (first / LOCK_FILE).exists()  # clean released the lock it took


def test_clean_holds_the_lock_so_a_resume_starting_meanwhile_keeps_its_session(tmp_path, capsys, monkeypatch):
    session = make_session(tmp_path, session_id="resumed_now")
    resumed = SessionLock(session)
    read_lock = clean_command.read_lock

    def resume_starts_right_after_the_check(path):
        record = read_lock(path)
        if not resumed.held:
            resumed.acquire()  # a `lightning-bohb resume` takes the session between clean's check and its rmtree
        return record

    monkeypatch.setattr(clean_command, "read_lock", resume_starts_right_after_the_check)
    try:
        code, out, err = run_main(capsys, "clean", tmp_path, "--older-than", "1d")
        assert code == 0 and session.is_dir() and resumed.held
        assert "Removed 0 sessions; kept 1." in out
        assert f"note: skipping {session}: Session {session} is already running (pid {os.getpid()} on host" in err
    finally:
        resumed.release()


# -- export-best -------------------------------------------------------------------------------
BEST = "model:\n  class_path: digits_model.DigitsClassifier\n  init_args: {lr: 0.01}\ntrainer:\n  max_epochs: 3\n"


def test_export_best_copies_best_config(tmp_path, capsys):
    session = make_session(tmp_path, status="COMPLETED")
    (session / "best_config.yaml").write_text(BEST)
    target = tmp_path / "out" / "best.yaml"
    code, out, err = run_main(capsys, "export-best", session, "-o", target)
    assert code == 0 and err == ""
    assert target.read_text() == BEST and str(target) in out
    code, out, _ = run_main(capsys, "export-best", session)
    assert code == 0 and out == BEST


def test_export_best_prints_the_command_that_reruns_the_trial_exactly(tmp_path, capsys):
    from lightning_bohb.core.rerun import rerun_header

    session = make_session(tmp_path, status="COMPLETED")
    (session / "best_config.yaml").write_text(rerun_header(2) + BEST)
    target = tmp_path / "best.yaml"
    code, out, err = run_main(capsys, "export-best", session, "-o", target)
    assert code == 0 and err == "" and target.read_text() == rerun_header(2) + BEST
    assert out.splitlines()[-1] == f"Rerun the best trial exactly: OMP_NUM_THREADS=2 python main.py fit --config {target}"
    code, out, err = run_main(capsys, "export-best", session)
    assert code == 0 and out == rerun_header(2) + BEST  # the YAML alone on stdout
    assert err == "Rerun the best trial exactly: OMP_NUM_THREADS=2 python main.py fit --config best_config.yaml\n"


def test_export_best_of_a_paused_session_says_it_is_so_far(tmp_path, capsys):
    session = make_session(tmp_path, status="PAUSED")
    (session / "best_config.yaml").write_text(BEST)
    code, _, err = run_main(capsys, "export-best", session, "-o", tmp_path / "b.yaml")
    assert code == 0 and "is PAUSED; this is the best config so far" in err


def test_export_best_without_best_config_is_an_error(tmp_path, capsys):
    session = make_session(tmp_path, status="PAUSED")
    code, out, err = run_main(capsys, "export-best", session, "-o", tmp_path / "b.yaml")
    assert code == 1 and not (tmp_path / "b.yaml").exists()
    assert err.startswith(f"error: Session {session} has no best_config.yaml (status: PAUSED)")
    assert f"lightning-bohb resume {session}" in err
    code, _, err = run_main(capsys, "export-best", tmp_path / "nope")
    assert code == 1 and "is not a directory" in err


# -- pause -------------------------------------------------------------------------------------
FAKE_DRIVER = """
import json, os, signal, socket, sys, time
import yaml
from lightning_bohb.session.lock import SessionLock
session, mode = sys.argv[1], sys.argv[2]
summary_path = os.path.join(session, "session_state.summary.yaml")
lock = SessionLock(session)
lock.acquire()
print("ready", flush=True)
if mode == "slow-start":  # like a resume: the old summary stays until the handlers are in
    time.sleep(1.0)

def pause(signum, frame):
    if mode == "ignore":
        return
    summary = yaml.safe_load(open(summary_path))
    summary.update(status="PAUSED", signal=signal.Signals(signum).name)
    with open(summary_path, "w") as handle:
        yaml.safe_dump(summary, handle)
    time.sleep(0.3)  # the lock goes last, as in TuneReflowCLI
    lock.release()
    sys.exit(3)

signal.signal(signal.SIGUSR1, pause)
signal.signal(signal.SIGUSR2, pause)
summary = yaml.safe_load(open(summary_path))
summary.update(status="RUNNING", updated_at=time.strftime("%Y-%m-%dT%H:%M:%S"))
with open(summary_path, "w") as handle:
    yaml.safe_dump(summary, handle)
time.sleep(60)
"""


def start_fake_driver(session, mode="pause"):
    proc = subprocess.Popen([sys.executable, "-c", FAKE_DRIVER, str(session), mode], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def end_fake_driver(driver, wait=10.0):
    """Let a driver that released its lock finish exiting (pause returns as soon as the lock is gone), else kill it."""
    try:
        driver.wait(wait)
    except subprocess.TimeoutExpired:
        driver.kill()


@pytest.mark.parametrize("now, signame", [(False, "SIGUSR1"), (True, "SIGUSR2")])
def test_pause_signals_the_driver_and_waits_until_paused(tmp_path, capsys, now, signame):
    session = make_session(tmp_path, status="RUNNING")
    driver = start_fake_driver(session)
    try:
        code, out, err = run_main(capsys, "pause", session, *(["--now"] if now else []), "--timeout", "30")
    finally:
        end_fake_driver(driver)
    assert code == 0, err
    assert driver.wait(10) == 3
    summary = yaml.safe_load((session / SUMMARY_FILE).read_text())
    assert summary["signal"] == signame
    assert f"Session paused. Resume with:\n   lightning-bohb resume {session}" in out
    assert not (session / LOCK_FILE).exists()


def test_pause_waits_for_a_starting_driver_before_signalling(tmp_path, capsys):
    session = make_session(tmp_path, status="PAUSED")  # the summary of the previous run
    driver = start_fake_driver(session, mode="slow-start")
    try:
        code, out, err = run_main(capsys, "pause", session, "--timeout", "30")
    finally:
        end_fake_driver(driver)
    assert code == 0, err
    assert driver.wait(10) == 3  # it was signalled only once its handler was in
    assert "is starting; waiting for it to run" in out and "Session paused. Resume with:" in out


def test_pause_times_out_when_the_driver_does_not_pause(tmp_path, capsys):
    session = make_session(tmp_path, status="RUNNING")
    driver = start_fake_driver(session, mode="ignore")
    try:
        code, _, err = run_main(capsys, "pause", session, "--timeout", "0.5")
    finally:
        driver.kill()
        driver.wait(10)
    assert code == 1 and "did not pause within 0.5 s" in err


def test_pause_refuses_a_session_that_is_not_running(tmp_path, capsys):
    session = make_session(tmp_path, status="PAUSED")
    code, out, err = run_main(capsys, "pause", session)
    assert code == 1 and out == ""
    assert err == f"error: Session {session} is not running (status: PAUSED).\n"


def test_pause_refuses_a_stale_session(tmp_path, capsys):
    session = make_session(tmp_path, status="RUNNING")
    write_lock(session, DEAD_PID)
    code, _, err = run_main(capsys, "pause", session)
    assert code == 1
    assert f"is not running (status: RUNNING, but its driver (pid {DEAD_PID}) is gone)" in err
    assert f"lightning-bohb resume {session}" in err


def test_pause_on_another_host_says_where_to_run_it(tmp_path, capsys):
    session = make_session(tmp_path, status="RUNNING")
    write_lock(session, 4242, host="elsewhere.example")
    code, _, err = run_main(capsys, "pause", session)
    assert code == 1 and "runs on host 'elsewhere.example' (pid 4242, heartbeat 0 s ago)" in err
    assert "Run this command on elsewhere.example" in err
    (session / LOCK_FILE).write_text(json.dumps({"pid": 4242, "host": "elsewhere.example", "since": 0, "heartbeat": time.time() - 300}))
    code, _, err = run_main(capsys, "pause", session)  # that driver stopped renewing its lock 5 minutes ago
    assert code == 1 and "is not running (status: RUNNING, but its driver (pid 4242) is gone)" in err


@pytest.mark.parametrize("record", ["pid-only", "reused-pid", "another-command"])
def test_pause_never_signals_a_process_that_is_not_the_driver(tmp_path, capsys, record):
    session = make_session(tmp_path, status="RUNNING", updated_at=None)
    bystander = subprocess.Popen(["sleep", "60"])  # a process of the same user whose pid the lock names
    while not Path(f"/proc/{bystander.pid}/cmdline").read_bytes():  # exec'ed, not just forked
        time.sleep(0.01)
    lock = {"pid": bystander.pid, "host": socket.gethostname(), "since": time.time()}
    if record == "reused-pid":  # the driver died and its pid went to another process
        lock.update(start="ticks:1", cmdline=[sys.executable, "optimize.py"])
    elif record == "another-command":  # planted with the bystander's start time
        from lightning_bohb.session.owner_record import process_start

        lock.update(start=process_start(bystander.pid), cmdline=[sys.executable, "optimize.py"])
    (session / LOCK_FILE).write_text(json.dumps(lock))
    try:
        code, out, err = run_main(capsys, "pause", session, "--timeout", "5")
        with pytest.raises(subprocess.TimeoutExpired):
            bystander.wait(timeout=0.5)  # still alive: it was sent nothing
    finally:
        bystander.kill()
        bystander.wait()
    assert code == 1 and out == "" and err.startswith("error: ") and len(err.splitlines()) == 1, err
    if record == "reused-pid":
        assert f"is not running (status: RUNNING, but its driver (pid {bystander.pid}) is gone)" in err
    else:
        assert f"error: Not signalling pid {bystander.pid}: " in err and "nothing was sent" in err
        why = "records no process start time" if record == "pid-only" else "runs 'sleep 60', not the lock's driver"
        assert why in err


# -- resume (errors only: a real resume starts Ray, see tests/e2e/test_console.py) ---------------
def test_resume_of_missing_session_is_an_error(tmp_path, capsys):
    code, _, err = run_main(capsys, "resume", tmp_path / "nope")
    assert code == 1 and err.startswith("error: Session state not found") and "Traceback" not in err
    code, _, err = run_main(capsys, "resume", "--force", tmp_path / "nope")  # --force breaks locks, nothing else
    assert code == 1 and err.startswith("error: Session state not found")


def test_resume_of_completed_session_has_nothing_to_do(tmp_path, capsys):
    session = make_session(tmp_path, status="COMPLETED")
    code, out, _ = run_main(capsys, "resume", session)
    assert code == 0 and "already completed; nothing to resume" in out


def test_resume_of_corrupt_state_is_an_error(tmp_path, capsys):
    session = make_session(tmp_path, status="PAUSED")
    (session / "session_state.pkl").write_bytes(b"\x80\x05garbage")
    code, _, err = run_main(capsys, "resume", session)
    assert code == 1 and "is corrupt or truncated" in err and "Traceback" not in err


def test_signal_handlers_route_pause_and_quit_and_restore_previous():
    import signal

    from lightning_bohb.pause.signals import SignalHandlers

    seen = []
    before = signal.getsignal(signal.SIGUSR1)
    handlers = SignalHandlers(on_pause=lambda s: seen.append(("pause", s)), on_quit=lambda s: seen.append(("quit", s)))
    assert handlers.install()
    os.kill(os.getpid(), signal.SIGUSR1)  # the default action would end this process
    os.kill(os.getpid(), signal.SIGUSR2)
    os.kill(os.getpid(), signal.SIGTERM)
    handlers.restore()
    assert seen == [("pause", signal.SIGUSR1), ("quit", signal.SIGUSR2), ("pause", signal.SIGTERM)]
    assert signal.getsignal(signal.SIGUSR1) is before
