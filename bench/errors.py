#!/usr/bin/env python
"""Time to error: how long ``lightning-bohb`` takes to refuse a bad study or a resume whose code changed.

Cases (each timed from the launch of the command's process to its exit, with its one ``error:`` line):

  bad-class         ``run``: the base config's ``model.class_path`` names a class its module does not define
  missing-module    ``run``: the study lives outside the model's folder and nothing puts that folder on
                    the import path (``No module named ...``)
  changed-model     ``resume``: the model class's source changed since the session ran
  moved-model       ``resume``: the model's module is no longer where the session imported it from

The model is the example's (``examples/digits_model.py``, copied into a project folder of its own:
``models/``, ``studies/``); its module imports torch and Lightning, as a real model does. The resume
cases need a session: one real run of 1 trial of 1 epoch (Ray starts once, before any timing),
resumed with ``--num-samples 2`` from another folder without ``PYTHONPATH``.

    python bench/errors.py                 # about a minute on 2 idle cores
    python bench/errors.py --repeats 5 --json errors.json
    git archive d401124 src | tar -x -C /tmp/before && python bench/errors.py --package /tmp/before/src   # before
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import EXAMPLES, bench_env, median, print_header, print_table  # noqa: E402

CASES = ("bad-class", "missing-module", "changed-model", "moved-model")
GOAL_S = 5.0
STUDY = """base_config: {config}
search_space:
  lr: {{loguniform: [1.0e-4, 3.0e-2]}}
metric: {{metric: val_loss, mode: min}}
strategy: {{name: random}}
optimization: {{max_epochs: 1, num_samples: 1, max_concurrent_trials: 1, seed: 0}}
"""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each case (default 3); the table shows medians")
    parser.add_argument("--workdir", help="keep the project, session and logs here (default: a temporary folder)")
    parser.add_argument("--json", help="write the raw times to this file")
    parser.add_argument(
        "--package", help="a folder holding another lightning_bohb to time (e.g. `git archive COMMIT src | tar -x -C DIR`, then DIR/src)"
    )
    return parser.parse_args(argv)


def make_project(root: Path) -> Path:
    """``root/project``: ``models/digits_model.py``, ``studies/{config,bad,study,bad_study}.yaml``."""
    project = root / "project"
    (project / "models").mkdir(parents=True)
    (project / "studies").mkdir()
    shutil.copy(EXAMPLES / "digits_model.py", project / "models" / "digits_model.py")
    config = (EXAMPLES / "config.yaml").read_text()
    (project / "studies" / "config.yaml").write_text(config)
    (project / "studies" / "bad.yaml").write_text(config.replace("digits_model.DigitsClassifier", "digits_model.DigitsClassifer"))
    (project / "studies" / "study.yaml").write_text(STUDY.format(config="config.yaml"))
    (project / "studies" / "bad_study.yaml").write_text(STUDY.format(config="bad.yaml"))
    return project


def timed(argv, cwd: Path, env) -> tuple:
    """``(seconds, exit status, last line of stderr)`` of one command."""
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - started
    lines = done.stderr.strip().splitlines()
    return seconds, done.returncode, lines[-1] if lines else done.stdout.strip()[-300:]


def main(argv=None) -> int:
    args = parse_args(argv)
    root = Path(args.workdir or tempfile.mkdtemp(prefix="lbohb_errors_")).resolve()
    root.mkdir(parents=True, exist_ok=True)
    print_header("Time to error of lightning-bohb run/resume (seconds, process launch to exit)", root, bool(args.workdir))
    project = make_project(root)
    cli = [sys.executable, "-m", "lightning_bohb"]
    first = [str(Path(args.package).resolve())] if args.package else []
    fresh_shell = {k: v for k, v in bench_env().items() if k != "PYTHONPATH"}
    if first:
        fresh_shell["PYTHONPATH"] = first[0]  # only the package timed
    with_models = bench_env(PYTHONPATH=os.pathsep.join([*first, str(project / "models")]))
    elsewhere = root / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    experiments = root / "experiments"
    moved = root / "moved"  # on no import path of the session
    moved.mkdir(exist_ok=True)

    # The session the resume cases refuse: run once, to completion, with the models' folder on PYTHONPATH.
    done = subprocess.run(
        [*cli, "run", "project/studies/study.yaml", "--experiment-dir", str(experiments), "--session-id", "bench"],
        cwd=root, env=with_models, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=900,
    )
    if done.returncode != 0:
        print(f"the session run failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        return 1
    session = experiments / "study" / "session_bench"
    model = project / "models" / "digits_model.py"
    source = model.read_text()
    commands = {
        "bad-class": ([*cli, "run", "project/studies/bad_study.yaml", "--experiment-dir", str(experiments)], root, with_models),
        "missing-module": ([*cli, "run", "project/studies/study.yaml", "--experiment-dir", str(experiments)], root, fresh_shell),
        "changed-model": ([*cli, "resume", str(session), "--num-samples", "2"], elsewhere, fresh_shell),
        "moved-model": ([*cli, "resume", str(session), "--num-samples", "2"], elsewhere, fresh_shell),
    }
    times = {case: [] for case in CASES}
    errors = {}
    try:
        for _ in range(args.repeats):
            for case in CASES:
                if case == "changed-model":
                    model.write_text(source.replace('"""A small multi-layer perceptron', '"""An edited multi-layer perceptron', 1))
                elif case == "moved-model":
                    model.rename(moved / "digits_model.py")
                argv, cwd, env = commands[case]
                try:
                    seconds, code, line = timed(argv, cwd, env)
                finally:
                    if case == "moved-model":
                        (moved / "digits_model.py").rename(model)
                    model.write_text(source)
                if code == 0:
                    print(f"{case}: the command succeeded; expected an error")
                    return 1
                times[case].append(seconds)
                errors[case] = line
    finally:
        model.write_text(source)
    rows = [(case, median(t), min(t), max(t), "yes" if median(t) < GOAL_S else "NO") for case, t in times.items()]
    print_table(["case", "median s", "min s", "max s", f"< {GOAL_S:.0f} s"], rows)
    print()
    for case in CASES:
        print(f"{case}: {errors[case][:400]}")
    if args.json:
        Path(args.json).write_text(json.dumps({"times": times, "errors": errors, "load": os.getloadavg()}, indent=2))
    if not args.workdir:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
