#!/usr/bin/env python
"""Write the golden sessions of ``tests/data/golden``: small studies paused by a given release, and the same
studies run uninterrupted by it (the references the resumed sessions are compared with).

    python tests/data/make_golden_sessions.py 127d5eb    # the 0.1.0 release: the pickled state, format 0
    python tests/data/make_golden_sessions.py worktree   # this checkout's src: the current state format

Each study (BOHB, ASHA, Optuna) goes to ``golden/<strategy>_<label>/{paused,uninterrupted}``; the label is the
release, or ``format<N>`` for the working tree (N its state format version). The release's ``src`` is taken
from git (``git archive``) into a temporary folder and run from there, with this checkout's venv (the
release's dependencies must be those installed). Each session is a ``lightning-bohb run`` of its study,
run to the end or paused by SIGINT (the first Ctrl+C) once the summary shows the moment `PAUSE_WHEN` wants:
for BOHB, a trial HyperBand holds (PAUSED, waiting for its rung) while another trains, so that the session
pauses with trials held by their bracket; for the others, the second trial training. The script exits
non-zero if a paused session does not hold what it was paused for.
"""

import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
BASE = yaml.safe_load((REPO / "examples" / "config.yaml").read_text())
BASE["model"]["class_path"] = "e2e_models.RecordingClassifier"  # epochs of >= 0.5 s: a pause lands mid-search, resumes stay short
BASE["model"]["init_args"]["min_epoch_seconds"] = 0.5
STUDY = {
    "base_config": BASE,
    "search_space": {"lr": {"loguniform": [1.0e-3, 3.0e-2]}, "hidden_size": {"choice": [16, 32]}},
    "metric": {"metric": "val_loss", "mode": "min"},
    "optimization": {"max_epochs": 3, "num_samples": 4, "max_concurrent_trials": 1, "seed": 0, "experiment_name": "golden"},
}
STRATEGIES = {
    "bohb": {"name": "bohb", "reduction_factor": 3, "seed": 0},
    "asha": {"name": "asha", "grace_period": 1, "reduction_factor": 2, "seed": 0},
    "optuna": {"name": "optuna", "n_startup_trials": 2, "seed": 0},
}


def _held_by_bracket(trials: List[Dict[str, Any]]) -> bool:
    """A trial HyperBand paused at its rung (no session pause asked yet) while another one trains."""
    statuses = [trial.get("status") for trial in trials]
    return "PAUSED" in statuses and "RUNNING" in statuses


def _second_training(trials: List[Dict[str, Any]]) -> bool:
    return len(trials) >= 2 and trials[-1].get("status") == "RUNNING"


PAUSE_WHEN = {"bohb": _held_by_bracket, "asha": _second_training, "optuna": _second_training}


def _summary(work: Path) -> Dict[str, Any]:
    for path in (work / "experiments" / "golden").glob("session_*/session_state.summary.yaml"):
        try:
            return yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError):  # being replaced: read it at the next look
            return {}
    return {}


def _run(src: Path, work: Path, study: dict, pause_when=None) -> Tuple[Path, List[str]]:
    """The session of a ``lightning-bohb run`` of ``study``, and the trials PAUSED when it was told to pause."""
    (work / "study.yaml").write_text(yaml.safe_dump(study))
    path = f"{Path(sys.executable).parent}:/usr/bin:/bin"
    env = {"PYTHONPATH": f"{src}:{REPO / 'examples'}:{REPO / 'tests' / 'e2e'}", "PATH": path, "HOME": str(work)}
    argv = [sys.executable, "-m", "lightning_bohb", "run", "study.yaml", "--experiment-dir", str(work / "experiments")]
    driver = subprocess.Popen(argv, cwd=work, env=env)
    deadline = time.monotonic() + 900
    held: List[str] = []
    while pause_when is not None and driver.poll() is None and time.monotonic() < deadline:
        trials = _summary(work).get("trials") or []
        if pause_when(trials):
            print(f"pausing at: {[(t['id'], t['status'], t.get('epochs')) for t in trials]}", flush=True)
            held = [t["id"] for t in trials if t["status"] == "PAUSED"]
            driver.send_signal(signal.SIGINT)
            break
        time.sleep(0.2)  # a generator polling a file, not a test: nothing else tells it when
    driver.wait(timeout=max(1.0, deadline - time.monotonic()))
    (session,) = (work / "experiments" / "golden").glob("session_*")
    return session, held


def _check_paused(strategy: str, session: Path, held: List[str]) -> None:
    """The session paused; for BOHB, with the trials HyperBand held before the pause was asked for (PAUSED at
    their first rung while another trial trained) still PAUSED at that rung."""
    summary = yaml.safe_load((session / "session_state.summary.yaml").read_text())
    assert summary["status"] == "PAUSED", summary["status"]
    if strategy != "bohb":
        return
    rows = {row["id"]: row for row in summary["trials"]}
    at_end = [(i, rows[i]["status"], rows[i]["epochs"]) for i in held]
    print(f"{session.name}: held by their bracket at the pause: {held}; at the end: {at_end}")
    assert held and all(rows[i]["status"] == "PAUSED" and rows[i]["epochs"] == 1 for i in held), "no trial held by its bracket"


def main(rev: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        if rev == "worktree":
            shutil.copytree(REPO / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__"))
            sys.path.insert(0, str(REPO / "src"))
            from lightning_bohb.session.state_format import FORMAT_VERSION

            label = f"format{FORMAT_VERSION}"
        else:
            archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "src"], check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(tmp_path)], input=archive, check=True)
            label = rev
        for strategy, settings in STRATEGIES.items():
            target = HERE / "golden" / f"{strategy}_{label}"
            for name, pause_when in (("paused", PAUSE_WHEN[strategy]), ("uninterrupted", None)):
                work = tmp_path / strategy / name
                work.mkdir(parents=True)
                session, held = _run(tmp_path / "src", work, {**STUDY, "strategy": settings}, pause_when)
                if pause_when is not None:
                    _check_paused(strategy, session, held)
                shutil.rmtree(target / name, ignore_errors=True)
                ignore = shutil.ignore_patterns("*.lock", "*.flock", "session_control.json", "__pycache__")
                shutil.copytree(session, target / name / session.name, ignore=ignore)


if __name__ == "__main__":
    main(sys.argv[1])
