"""``lightning-bohb pause`` from a process that is only a Ray client of the session's 2-node cluster, with Ray's
token authentication on: the driver is asked through its control actor, not signalled; a client without the
cluster's token gets one error line that says so; another job of the cluster cannot drive the control actor."""

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import yaml

from e2e_support import first_checkpoint_exists, paused_exit, script_env, session_dir_of, start_search, wait_until, write_config

ROGUE_JOB = Path(__file__).resolve().parent / "rogue_control_job.py"


def _pause(session, env_changes, timeout=240):
    env = script_env()
    env.update(env_changes)
    argv = [sys.executable, "-m", "lightning_bohb", "pause", str(session), "--timeout", "180"]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)


def test_pause_from_a_ray_client_with_token_auth(tmp_path, token_cluster):
    record_dir = tmp_path / "records"
    record_dir.mkdir()
    config = write_config(tmp_path, record_dir, min_epoch_seconds=1.0)
    driver = start_search(tmp_path, ["--base-config", str(config), "--max-epochs", "60"])  # long enough for both pauses
    experiments = tmp_path / "experiments"
    wait_until(lambda: first_checkpoint_exists(experiments), 240, "a first checkpoint")
    session = session_dir_of(experiments)
    control = wait_until(lambda: (session / "session_control.json").is_file() and session / "session_control.json", 60, "the control file")
    assert oct(control.stat().st_mode & 0o777) == "0o600"  # the token is the owner's
    running = _status(session)
    assert re.search(rf"Driver: +{re.escape(socket.gethostname())} pid {driver.proc.pid} \(alive, heartbeat \d+ s ago\)", running), running

    refused = _pause(session, {"RAY_AUTH_TOKEN": "not-the-token"})
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert refused.stderr.startswith("error: The Ray cluster at") and "RAY_AUTH_TOKEN" in refused.stderr
    assert refused.stderr.count("\n") == 1, refused.stderr  # one line: none of Ray's own retries
    assert driver.proc.poll() is None  # still running: nothing reached it

    # Another job of the cluster (it has the cluster's token) drives the session's control actor without the
    # session key: every call that changes it is refused, its own token pauses nothing, and the search goes on.
    rogue = subprocess.run([sys.executable, str(ROGUE_JOB)], env=script_env(), capture_output=True, text=True, timeout=240)
    assert rogue.returncode == 0, rogue.stderr[-3000:]
    answers = json.loads(rogue.stdout.strip().splitlines()[-1])
    assert len(answers) == 9 and answers.pop("request") == "False", answers
    assert set(answers.values()) == {"refused"}, answers
    assert driver.proc.poll() is None

    done = _pause(session, {})
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"pid {driver.proc.pid} on " in done.stdout and "through Ray to pause at the next validation boundary" in done.stdout
    assert "Session paused. Resume with:" in done.stdout
    output = paused_exit(driver)
    assert "OPTIMIZATION PAUSED" in output
    summary = yaml.safe_load((session / "session_state.summary.yaml").read_text())
    assert summary["status"] == "PAUSED"
    assert "ERROR" not in yaml.safe_dump(summary["trials"])  # no trial was released into an exit by the other job
    assert not (session / "session_control.json").exists()  # removed with the run: no stale token

    assert re.search(r"Driver: +none \(no driver holds the session\)", _status(session))


def _status(session):
    argv = [sys.executable, "-m", "lightning_bohb", "status", str(session)]
    return subprocess.run(argv, env=script_env(), capture_output=True, text=True, timeout=60).stdout

