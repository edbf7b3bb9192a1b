"""Twenty ``lightning-bohb resume`` of one crashed session at the same moment (the cron recipe of docs/commands.md and docs/preemption.md,
after a ``kill -9`` left the driver's lock behind): exactly one runs the session, the others are refused
with one ``error:`` line naming it and the pause command, and nothing of its run is touched. The
session's files are owner-only, and the Ray it starts keeps its temporary folder private."""

import json
import os
import shutil
import stat
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from e2e_models import RecordingClassifier
from e2e_support import ScriptRun, epoch_end_counts, kill_9_with_its_ray, session_dir_of, trial_histories, wait_until, write_config
from lightning_bohb.session.owner_record import lock_is_live, read_lock

RESUMES = 20
MAX_EPOCHS = 2


class GatedClassifier(RecordingClassifier):
    """Waits at the start of every epoch >= 1 until ``gate_file`` exists: the test decides when it trains on."""

    def __init__(self, gate_file: str = "", **kwargs):
        super().__init__(**kwargs)
        self.gate_file = gate_file

    def on_train_epoch_start(self):
        super().on_train_epoch_start()
        while self.gate_file and self.current_epoch >= 1 and not os.path.exists(self.gate_file):
            time.sleep(0.05)


def _write_study(tmp_path: Path, record_dir: Path, gate: Path) -> Path:
    config_path = write_config(tmp_path, record_dir, min_epoch_seconds=0.0)
    config = yaml.safe_load(config_path.read_text())
    config["model"]["class_path"] = f"{__name__}.GatedClassifier"
    config["model"]["init_args"]["gate_file"] = str(gate)
    config_path.write_text(yaml.safe_dump(config))
    study = {
        "base_config": config_path.name,
        "search_space": {"lr": {"loguniform": [1.0e-3, 3.0e-2]}},
        "metric": {"metric": "val_loss", "mode": "min"},
        "strategy": {"name": "random"},
        "optimization": {"max_epochs": MAX_EPOCHS, "num_samples": 1, "max_concurrent_trials": 1, "seed": 0},
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def _epoch_starts(record_dir: Path):
    events = [json.loads(line) for path in record_dir.glob("*.jsonl") for line in path.read_text().splitlines() if line.strip()]
    return [event["epoch"] for event in events if event["hook"] == "train_epoch_start"]


def _private_ray_dirs(temp: Path):
    return {path for path in temp.iterdir() if path.name.startswith("lbohb_")}


@pytest.fixture
def short_tmpdir(monkeypatch):
    """``$TMPDIR`` of the drivers the test starts: a new short folder (Ray's socket paths live below it)."""
    temp = Path(tempfile.mkdtemp(prefix="lbt", dir="/tmp"))
    monkeypatch.setenv("TMPDIR", str(temp))
    yield temp
    shutil.rmtree(temp, ignore_errors=True)


def test_twenty_concurrent_resumes_one_owner(tmp_path, short_tmpdir):
    record_dir, gate, temp = tmp_path / "records", tmp_path / "gate", short_tmpdir
    record_dir.mkdir()
    study = _write_study(tmp_path, record_dir, gate)
    experiments = tmp_path / "experiments"

    crashed = ScriptRun([sys.executable, "-m", "lightning_bohb", "run", str(study), "--experiment-dir", str(experiments)], cwd=tmp_path)
    try:
        # Epoch 0 is checkpointed (and its snapshot written) before epoch 1 starts, and waits at the gate.
        wait_until(lambda: 1 in _epoch_starts(record_dir) or crashed.proc.poll() is not None, 300, "epoch 1 to start")
        assert crashed.proc.poll() is None, crashed.output[-3000:]
    finally:
        kill_9_with_its_ray(crashed)
    session = session_dir_of(experiments)
    stale = read_lock(session)
    assert stale["pid"] == crashed.proc.pid and not lock_is_live(stale)  # what the crash left
    leftover = _private_ray_dirs(temp)  # the killed driver's, never removed

    argv = [sys.executable, "-m", "lightning_bohb", "resume", str(session)]
    resumes = [ScriptRun(argv, cwd=tmp_path) for _ in range(RESUMES)]
    try:
        pids = {run.proc.pid: run for run in resumes}
        owner = wait_until(
            lambda: (lambda record: record if record and record["pid"] in pids and lock_is_live(record) else None)(read_lock(session)),
            300,
            "one resume to take the lock",
        )
        winner = pids[owner["pid"]]
        losers = [run for run in resumes if run is not winner]
        for run in losers:  # they are refused whenever they get there; Ray starting for the owner (30 s at most) goes first
            try:
                os.setpriority(os.PRIO_PROCESS, run.proc.pid, 19)
            except ProcessLookupError:
                pass
        second_owner = lambda: [run.output for run in losers if "Started a local Ray instance" in run.output]  # noqa: E731
        wait_until(lambda: all(run.proc.poll() is not None for run in losers) or second_owner(), 600, "every other resume to exit")
        assert not second_owner(), second_owner()[0][-3000:]
        record = read_lock(session)
        assert (record["pid"], record["since"]) == (owner["pid"], owner["since"])  # the owner's record, untouched by 19 refused resumes
        assert winner.proc.poll() is None, winner.output[-3000:]

        # The owner's trial is back at the gate: Ray's staging copies exist now, in a private folder.
        deadline = time.monotonic() + 600
        while _epoch_starts(record_dir).count(1) < 2 and winner.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _epoch_starts(record_dir).count(1) == 2, winner.output[-3000:]
        (private,) = _private_ray_dirs(temp) - leftover
        assert stat.S_IMODE(private.stat().st_mode) == 0o700
        assert list(private.glob("ray/session_*/artifacts/*/*/driver_artifacts")), sorted(private.rglob("*"))[:20]
        # The resumed trial trains from a copy of its checkpoint, made in its TMPDIR: the private folder too.
        copies = list(private.glob("checkpoint_tmp_*/checkpoint.ckpt"))
        assert copies and not list(temp.glob("checkpoint_tmp_*")), sorted(temp.rglob("*"))[:20]
        gate.touch()
        assert winner.wait(300) == 0, winner.output[-3000:]
    finally:
        gate.touch()
        for run in resumes:
            if run.proc.poll() is None:
                kill_9_with_its_ray(run)

    for run in losers:
        output = run.output
        errors = [line for line in output.splitlines() if line.startswith("error:")]
        assert run.proc.returncode == 1 and len(errors) == 1, output[-3000:]
        assert f"is already running (pid {winner.proc.pid} on host" in errors[0], errors[0]
        assert f"lightning-bohb pause {session}" in errors[0]
        assert "Traceback" not in output and "Resuming session" not in output, output[-3000:]
    assert "Resuming session" in winner.output and "Optimization complete" in winner.output

    # The owner's run is whole: each epoch trained to its end once, logged once, nothing left behind.
    assert set(epoch_end_counts(record_dir).values()) == {1} and len(epoch_end_counts(record_dir)) == MAX_EPOCHS
    (history,) = trial_histories(session / "tune").values()
    assert [row[0] for row in history] == list(range(MAX_EPOCHS)), history
    assert read_lock(session) is None and not list(session.rglob(".*.tmp"))
    assert _private_ray_dirs(temp) == leftover  # the owner removed its Ray's temporary folder

    # The session folder is its owner's only, and so is everything in it: LightningTune's and Ray Tune's
    # files (temporary file + rename: 0600), and what Lightning and Tune write in a trial (its umask is 077).
    assert stat.S_IMODE(session.stat().st_mode) == 0o700
    shared = [path for path in session.rglob("*") if stat.S_IMODE(path.stat().st_mode) & 0o077]
    assert not shared, shared
