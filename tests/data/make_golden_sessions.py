#!/usr/bin/env python
"""Write the golden sessions of ``tests/data/golden``: a small study paused by a given release, and the same
study run uninterrupted by it (the reference the resumed session is compared with).

    python tests/data/make_golden_sessions.py 127d5eb   # the 0.1.0 release: the pickled state, format 0

The release's ``src`` is taken from git (``git archive``) into a temporary folder and run from there, with this
checkout's venv (the release's dependencies must be those installed). Each session is a ``lightning-bohb run``
of ``study.yaml`` below: paused by ``pause_after``, or run to the end.
"""

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
BASE = yaml.safe_load((REPO / "examples" / "config.yaml").read_text())
BASE["model"]["class_path"] = "e2e_models.RecordingClassifier"  # epochs of >= 1.5 s: the pause comes mid-search
BASE["model"]["init_args"]["min_epoch_seconds"] = 1.5
STUDY = {
    "base_config": BASE,
    "search_space": {"lr": {"loguniform": [1.0e-3, 3.0e-2]}, "hidden_size": {"choice": [16, 32]}},
    "metric": {"metric": "val_loss", "mode": "min"},
    "strategy": {"name": "bohb", "reduction_factor": 3, "seed": 0},
    "optimization": {"max_epochs": 3, "num_samples": 4, "max_concurrent_trials": 1, "seed": 0, "experiment_name": "golden"},
}


def _run(src: Path, work: Path, study: dict) -> Path:
    (work / "study.yaml").write_text(yaml.safe_dump(study))
    path = f"{Path(sys.executable).parent}:/usr/bin:/bin"
    env = {"PYTHONPATH": f"{src}:{REPO / 'examples'}:{REPO / 'tests' / 'e2e'}", "PATH": path, "HOME": str(work)}
    argv = [sys.executable, "-m", "lightning_bohb", "run", "study.yaml", "--experiment-dir", str(work / "experiments")]
    subprocess.run(argv, cwd=work, env=env, check=False, timeout=900)
    (session,) = (work / "experiments" / "golden").glob("session_*")
    return session


def main(rev: str) -> None:
    target = HERE / "golden" / f"bohb_{rev}"
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "src"], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tmp_path)], input=archive, check=True)
        for name, extra in (("paused", {"pause_after": "15s"}), ("uninterrupted", {})):
            work = tmp_path / name
            work.mkdir()
            study = {**STUDY, "optimization": {**STUDY["optimization"], **extra}}
            session = _run(tmp_path / "src", work, study)
            shutil.rmtree(target / name, ignore_errors=True)
            ignore = shutil.ignore_patterns("*.lock", "*.flock", "session_control.json")
            shutil.copytree(session, target / name / session.name, ignore=ignore)


if __name__ == "__main__":
    main(sys.argv[1])
