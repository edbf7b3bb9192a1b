"""The preemption recipes as far as this machine allows: ``lightning-bohb run STUDY --resume-if-exists`` starts
the session, continues it after a SIGTERM (a Kubernetes eviction), refuses a second driver while one runs
(overlapping cron runs) and leaves a completed one alone; the SLURM batch script passes SLURM's SIGUSR1 on,
requeues the job when the session paused, and the requeued job continues it."""

import os
import signal
import subprocess
import sys

import yaml

from e2e_support import REPO, ScriptRun, epoch_end_counts, first_checkpoint_exists, script_env, wait_until, write_config
from lightning_bohb.exceptions import EXIT_PAUSED

SBATCH = REPO / "examples" / "preemption" / "slurm_study.sbatch"


def _study(tmp_path, max_epochs):
    record_dir = tmp_path / "records"
    record_dir.mkdir()
    study = {
        "base_config": str(write_config(tmp_path, record_dir, min_epoch_seconds=1.0)),
        "search_space": {"lr": {"loguniform": [1.0e-3, 3.0e-2]}},
        "metric": {"metric": "val_loss", "mode": "min"},
        "strategy": {"name": "random"},
        "optimization": {"max_epochs": max_epochs, "num_samples": 2, "max_concurrent_trials": 2, "seed": 0},
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def _run(tmp_path, *extra):
    argv = [sys.executable, "-m", "lightning_bohb", "run", "study.yaml", "--experiment-dir", "experiments", *extra]
    return ScriptRun(argv, cwd=tmp_path)


def _each_epoch_trained_once(record_dir, max_epochs):
    counts = epoch_end_counts(record_dir)
    assert len(counts) == 2 * max_epochs and all(n == 1 for n in counts.values()), counts  # 2 trials, no epoch twice


def test_resume_if_exists_starts_continues_and_leaves_a_completed_session(tmp_path):
    _study(tmp_path, max_epochs=20)  # still running when the second command has started
    session = tmp_path / "experiments" / "study" / "session_nightly"
    first = _run(tmp_path, "--session-id", "nightly", "--resume-if-exists")
    wait_until(lambda: first_checkpoint_exists(tmp_path / "experiments"), 240, "a first checkpoint")
    assert "No session" in first.output and "starting it" in first.output

    overlapping = _run(tmp_path, "--session-id", "nightly", "--resume-if-exists")  # cron fires again
    assert overlapping.wait(120) == 1, overlapping.output
    assert f"error: Session {session} is already running" in overlapping.output and "Traceback" not in overlapping.output

    first.proc.send_signal(signal.SIGTERM)  # an eviction: pause, exit 3
    assert first.wait(240) == EXIT_PAUSED, first.output[-3000:]
    assert yaml.safe_load((session / "session_state.summary.yaml").read_text())["status"] == "PAUSED"

    second = _run(tmp_path, "--session-id", "nightly", "--resume-if-exists")
    assert second.wait(300) == 0, second.output[-3000:]
    assert f"Session {session} exists; continuing it." in second.output
    assert yaml.safe_load((session / "session_state.summary.yaml").read_text())["status"] == "COMPLETED"
    _each_epoch_trained_once(tmp_path / "records", 20)

    third = _run(tmp_path, "--session-id", "nightly", "--resume-if-exists")
    assert third.wait(120) == 0, third.output
    assert f"Session {session} already completed; nothing to resume." in third.output
    _each_epoch_trained_once(tmp_path / "records", 20)  # nothing ran again


def test_slurm_batch_script_passes_usr1_on_requeues_and_the_requeued_job_continues(tmp_path):
    _study(tmp_path, max_epochs=8)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "scontrol_calls"
    scontrol = bin_dir / "scontrol"  # SLURM's requeue, recorded
    scontrol.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    scontrol.chmod(0o755)
    env = script_env()
    env.update(PATH=f"{bin_dir}{os.pathsep}{env['PATH']}", SLURM_JOB_ID="4242", LIGHTNING_BOHB=f"{sys.executable} -m lightning_bohb")
    argv = ["bash", str(SBATCH), "study.yaml"]

    job = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_until(lambda: first_checkpoint_exists(tmp_path / "experiments"), 240, "a first checkpoint")
    job.send_signal(signal.SIGUSR1)  # what --signal=B:USR1@120 sends the batch shell
    output, _ = job.communicate(timeout=240)
    assert job.returncode == EXIT_PAUSED, output[-3000:]
    assert "OPTIMIZATION PAUSED" in output and "Paused; requeueing job 4242" in output
    assert calls.read_text().split() == ["requeue", "4242"]

    requeued = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert requeued.returncode == 0, requeued.stdout[-3000:] + requeued.stderr[-3000:]
    session = tmp_path / "experiments" / "study" / "session_slurm-4242"
    assert f"Session {session} exists; continuing it." in requeued.stdout
    assert calls.read_text().split() == ["requeue", "4242"]  # not requeued again: it completed
    _each_epoch_trained_once(tmp_path / "records", 8)
