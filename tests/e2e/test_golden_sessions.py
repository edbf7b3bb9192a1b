"""Sessions outlive releases: a session paused by an earlier release resumes under this code.

``tests/data/golden/<strategy>_<label>`` holds a small study (BOHB, ASHA, Optuna) paused by release ``<label>``
(``127d5eb`` is 0.1.0: the pickled state, format 0) or by the current state format (``format<N>``), and the
same study run to the end by it (``tests/data/make_golden_sessions.py <rev>|worktree`` writes them). The paused
one is copied, resumed with ``lightning-bohb resume`` from another folder and must end with every trial's
per-epoch metrics equal to the uninterrupted run's, its state then written in the current format. The BOHB
sessions paused with a trial HyperBand held at its rung (PAUSED while a later trial of its bracket trained).
0.1.0's state predates the session's import path, so the resume is given the folders of its classes by PYTHONPATH.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from e2e_support import REPO, script_env, trial_histories
from lightning_bohb.session.state_format import FORMAT_VERSION

GOLDEN = REPO / "tests" / "data" / "golden"


def _latest(tune_dir: Path):
    """Each trial's epochs, the last report of each (a resumed trial reports its paused epoch again)."""
    return {config: sorted({row[0]: row for row in rows}.values()) for config, rows in trial_histories(tune_dir).items()}


def _held_by_bracket(session: Path) -> list:
    """Trials PAUSED at the first rung with a later trial created after them: with one trial at a time, only
    HyperBand pauses a trial and starts another (a session pause starts none)."""
    trials = yaml.safe_load((session / "session_state.summary.yaml").read_text())["trials"]
    return [row["id"] for i, row in enumerate(trials) if row["status"] == "PAUSED" and row["epochs"] == 1 and i + 1 < len(trials)]


@pytest.mark.parametrize("name", sorted(path.name for path in GOLDEN.iterdir()))
def test_a_paused_golden_session_resumes_exactly(tmp_path, name):
    (paused,) = (GOLDEN / name / "paused").iterdir()
    (uninterrupted,) = (GOLDEN / name / "uninterrupted").iterdir()
    if name.startswith("bohb_"):
        assert _held_by_bracket(paused), "the BOHB session paused with no trial held by its bracket"
    session = tmp_path / "experiments" / "golden" / paused.name
    shutil.copytree(paused, session)
    for folder, _, files in os.walk(tmp_path / "experiments"):  # as the release left it: owner-only (git keeps no modes)
        os.chmod(folder, 0o700)
        for file in files:
            os.chmod(os.path.join(folder, file), 0o600)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = script_env()
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO / "examples"), str(REPO / "tests" / "e2e")])
    argv = [sys.executable, "-m", "lightning_bohb", "resume", str(session)]
    done = subprocess.run(argv, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    expected = _latest(uninterrupted / "tune")
    assert len(expected) == 4 and _latest(session / "tune") == expected
    state = json.loads((session / "session_state.json").read_text())
    assert state["format_version"] == FORMAT_VERSION and not (session / "session_state.pkl").exists()
