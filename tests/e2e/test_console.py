"""The ``lightning-bohb`` console script for real: run a YAML study, status, pause from another shell,
list, resume with the printed command (from a fresh shell: no PYTHONPATH, another folder), export the best config."""

import os
import shlex
import subprocess
import sys

import yaml

from e2e_support import (
    EXIT_PAUSED,
    ScriptRun,
    first_checkpoint_exists,
    script_env,
    session_dir_of,
    trial_histories,
    wait_until,
    write_config,
)

MAX_EPOCHS = 6


def console(*args, cwd, timeout=120):
    argv = [sys.executable, "-m", "lightning_bohb", *map(str, args)]
    return subprocess.run(argv, cwd=cwd, env=script_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)


def write_study(tmp_path):
    record_dir = tmp_path / "records"
    record_dir.mkdir()
    # 1 s epochs leave the pause several epochs to land in before the trials finish.
    write_config(tmp_path, record_dir, min_epoch_seconds=1.0)
    study = {
        "base_config": "config.yaml",
        "search_space": {"lr": {"loguniform": [1.0e-4, 3.0e-2]}, "hidden_size": {"choice": [16, 32, 64]}},
        "metric": {"metric": "val_loss", "mode": "min"},
        "strategy": {"name": "random"},
        "optimization": {"max_epochs": MAX_EPOCHS, "num_samples": 2, "max_concurrent_trials": 2, "seed": 0},
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def test_run_status_pause_list_resume_export(tmp_path):
    study = write_study(tmp_path)
    experiments = tmp_path / "experiments"
    run = ScriptRun([sys.executable, "-m", "lightning_bohb", "run", str(study), "--experiment-dir", str(experiments)], cwd=tmp_path)
    try:
        wait_until(lambda: first_checkpoint_exists(experiments) or run.proc.poll() is not None, 180, "the first trial checkpoint")
        assert run.proc.poll() is None, run.output[-3000:]
        session = session_dir_of(experiments)
        assert session.parent.name == "study"  # experiment_name defaults to the study file's stem

        status = console("status", session, cwd=tmp_path)
        assert status.returncode == 0, status.stderr
        assert "State:       RUNNING" in status.stdout and "val_loss" in status.stdout

        pause = console("pause", session, "--timeout", "120", cwd=tmp_path, timeout=180)
        assert pause.returncode == 0, pause.stdout + pause.stderr
        assert "Session paused. Resume with:" in pause.stdout
        resume_command = pause.stdout.strip().splitlines()[-1].strip()
        assert resume_command.endswith(f"resume {session}")
        assert run.wait(timeout=120) == EXIT_PAUSED, run.output[-3000:]
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
    output = run.output
    assert "OPTIMIZATION PAUSED" in output and "Traceback" not in output
    epochs_at_pause = {key: len(history) for key, history in trial_histories(session / "tune").items()}
    assert any(n < MAX_EPOCHS for n in epochs_at_pause.values()), epochs_at_pause

    listing = console("list", experiments, cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    (row,) = [line for line in listing.stdout.splitlines() if line.startswith(f"study/{session.name}")]
    assert row.split()[1] == "PAUSED"

    # The printed command, from a fresh shell: no PYTHONPATH (the run had the models' folders there), another folder.
    fresh_shell = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    resumed = subprocess.run(
        shlex.split(resume_command), cwd=elsewhere, env=fresh_shell, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300,
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert "Resuming session" in resumed.stdout and "Optimization complete" in resumed.stdout
    histories = trial_histories(session / "tune")
    assert len(histories) == 2 and all(len(h) == MAX_EPOCHS for h in histories.values()), histories

    best = tmp_path / "best.yaml"
    export = console("export-best", session, "-o", best, cwd=tmp_path)
    assert export.returncode == 0, export.stderr
    config = yaml.safe_load(best.read_text())
    assert "model" in config and "trainer" in config
    assert config["model"]["init_args"]["hidden_size"] in (16, 32, 64)
