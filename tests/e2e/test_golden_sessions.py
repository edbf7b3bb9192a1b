"""Sessions outlive releases: a session paused by an earlier release resumes under this code.

``tests/data/golden/bohb_<rev>`` holds a small BOHB study paused by release ``<rev>`` and the same study run
to the end by it (``tests/data/make_golden_sessions.py <rev>`` writes both). The paused one is copied,
resumed with ``lightning-bohb resume`` from another folder and must end with every trial's per-epoch
metrics equal to the uninterrupted run's. 127d5eb is 0.1.0: its state is the pickled format 0, from before
the session recorded its import path, so the resume is given the folders of its classes by PYTHONPATH.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from e2e_support import REPO, script_env, trial_histories

GOLDEN = REPO / "tests" / "data" / "golden"


def _latest(tune_dir: Path):
    """Each trial's epochs, the last report of each (a resumed trial reports its paused epoch again)."""
    return {config: sorted({row[0]: row for row in rows}.values()) for config, rows in trial_histories(tune_dir).items()}


@pytest.mark.parametrize("name", sorted(path.name for path in GOLDEN.iterdir()))
def test_a_session_paused_by_an_earlier_release_resumes_exactly(tmp_path, name):
    (paused,) = (GOLDEN / name / "paused").iterdir()
    (uninterrupted,) = (GOLDEN / name / "uninterrupted").iterdir()
    session = tmp_path / "experiments" / "golden" / paused.name
    shutil.copytree(paused, session)
    for folder, _, files in os.walk(tmp_path / "experiments"):  # as the release left it: owner-only (git keeps no modes)
        os.chmod(folder, 0o700)
        for file in files:
            os.chmod(os.path.join(folder, file), 0o600)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = script_env()
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "examples"), str(REPO / "tests" / "e2e")])
    argv = [sys.executable, "-m", "lightning_bohb", "resume", str(session)]
    done = subprocess.run(argv, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    expected = _latest(uninterrupted / "tune")
    assert len(expected) == 4 and _latest(session / "tune") == expected
