#!/usr/bin/env python
"""Pause and resume: LightningTune's session pause (Ctrl+C) against plain Ray Tune's Ctrl+C + Tuner.restore.

Both sides run the same seeded 8-trial ASHA search over the example's digits search space
(2 trials at a time), training ``bench_models.TimedDigitsClassifier``, whose epochs last at least
``--min-epoch-seconds`` so that the pause lands mid-trial:

  LightningTune   ``examples/optimize.py --strategy asha --num-samples 8 --max-concurrent-trials 2``
                  with a config naming the bench model; resumed with the command it prints.
  plain Ray Tune  A hand-written ``Tuner`` script (this file, ``--child-plain``): same searcher
                  (BasicVariantGenerator, same seed), same ``ASHAScheduler``, a function trainable
                  that reports metrics + a checkpoint each epoch and restarts from
                  ``tune.get_checkpoint()``; resumed with ``Tuner.restore(..., resume_unfinished=True)``.

For each side: start the search; once the first checkpoint exists (plus ``--delay`` seconds), send
SIGINT once and time the process's exit; then launch the resume and time launch -> first new epoch
(the first new epoch start in the model's records, and the first new row in any result.json), and
let it finish. Epochs lost = epochs started more than once (model records) and epochs reported more
than once (rows of a trial's result.json with a repeated ``epoch``).

    python bench/pause_resume.py                      # about 3-4 minutes on 2 idle cores
    python bench/pause_resume.py --repeats 3 --min-epoch-seconds 2
    python bench/pause_resume.py --long-epochs        # 60 s epochs, SIGTERM with a 10 s deadline (bench/long_epochs.py)
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    BATCH_SIZES,
    EXAMPLE_SCRIPT,
    EXAMPLES,
    HIDDEN_SIZES,
    LR_RANGE,
    NUM_LAYERS,
    RESUME_HEADER,
    bench_env,
    count_result_rows,
    fmt,
    median,
    print_header,
    print_table,
    read_records,
    read_results,
)

SIDES = ("lt", "plain")
LABELS = {"lt": "LightningTune", "plain": "plain Ray Tune"}
EXIT_PAUSED = 3


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-samples", type=int, default=8, help="trials (default 8)")
    parser.add_argument("--max-epochs", type=int, default=4, help="epochs per trial, ASHA's max_t (default 4)")
    parser.add_argument("--max-concurrent-trials", type=int, default=2, help="trials at once (default 2)")
    parser.add_argument("--min-epoch-seconds", type=float, default=1.0, help="floor on one epoch's time (default 1.0)")
    parser.add_argument("--delay", type=float, default=None,
                        help="seconds after the first checkpoint before SIGINT (default: half of --min-epoch-seconds)")
    parser.add_argument("--seed", type=int, default=0, help="search and training seed (default 0)")
    parser.add_argument("--repeats", type=int, default=1, help="pause/resume cycles of each side, alternated (default 1)")
    parser.add_argument("--sides", default="lt,plain", help="comma-separated subset of lt,plain")
    parser.add_argument("--timeout", type=float, default=600, help="seconds any one process may take (default 600)")
    parser.add_argument("--workdir", default=None, help="keep every run's files here (default: a temporary folder, deleted)")
    parser.add_argument("--json", default=None, help="also write all measurements to this JSON file")
    parser.add_argument("--long-epochs", action="store_true",
                        help="instead: the long-epoch case (bench/long_epochs.py): SIGTERM with a deadline shorter than an epoch")
    parser.add_argument("--step-seconds", type=float, default=3.0, help="long epochs: seconds per step, 20 steps an epoch (default 3.0)")
    parser.add_argument("--deadline", type=float, default=10.0, help="long epochs: LightningTune's grace_period (default 10)")
    parser.add_argument("--into", type=float, default=30.0, help="long epochs: SIGTERM this many seconds into epoch 2 (default 30)")
    parser.add_argument("--child-plain", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--restore", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--storage", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.side_list = [s.strip() for s in args.sides.split(",") if s.strip()]
    if set(args.side_list) - set(SIDES):
        parser.error(f"--sides takes a subset of {list(SIDES)}")
    if args.delay is None:
        args.delay = args.min_epoch_seconds / 2
    return args


# --------------------------------------------------------------------------------------------
# The plain Ray Tune script (child): what a user writes without LightningTune.
# --------------------------------------------------------------------------------------------
def plain_main(args) -> int:
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.basic_variant import BasicVariantGenerator

    from bench_models import plain_tune_trainable

    trainable = tune.with_resources(
        tune.with_parameters(
            plain_tune_trainable, max_epochs=args.max_epochs, seed=args.seed, min_epoch_seconds=args.min_epoch_seconds
        ),
        {"cpu": 1},
    )
    ray.init(include_dashboard=False)  # as TuneReflowCLI does
    path = os.path.join(args.storage, "tune")
    if args.restore:
        tuner = tune.Tuner.restore(path, trainable=trainable, resume_unfinished=True)
    else:
        # examples/optimize.py's DigitsSearchSpace, in the same order (so the seeded searcher draws the same configs).
        space = {
            "lr": tune.loguniform(*LR_RANGE),
            "hidden_size": tune.choice(list(HIDDEN_SIZES)),
            "num_layers": tune.choice(list(NUM_LAYERS)),
            "batch_size": tune.choice(list(BATCH_SIZES)),
        }
        tuner = tune.Tuner(
            trainable,
            param_space=space,
            tune_config=tune.TuneConfig(
                metric="val_loss",
                mode="min",
                num_samples=args.num_samples,
                search_alg=BasicVariantGenerator(max_concurrent=args.max_concurrent_trials, random_state=args.seed),
                scheduler=ASHAScheduler(
                    time_attr="training_iteration", max_t=args.max_epochs, grace_period=1, reduction_factor=3
                ),
            ),
            run_config=tune.RunConfig(
                name="tune",
                storage_path=args.storage,
                checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
                verbose=0,
            ),
        )
    results = tuner.fit()
    print(f"plain: fit returned; {len(results)} trials, errors: {len(results.errors)}", flush=True)
    ray.shutdown()
    print("plain: ray shut down", flush=True)
    return 0


# --------------------------------------------------------------------------------------------
# Parent: drive each side through start -> SIGINT -> exit -> resume -> finish, with timestamps.
# --------------------------------------------------------------------------------------------
class Proc:
    """A process whose output lines are kept with the time each arrived, and whose exit is timed."""

    def __init__(self, argv, cwd, env, log_path: Path):
        self.lines = []
        self.log = open(log_path, "a")
        self.log.write(f"\n$ {shlex.join(argv)}\n")
        self.launched = time.time()
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.exited = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode(errors="replace").rstrip("\n")
            self.lines.append((time.time(), line))
            self.log.write(line + "\n")
        self.proc.wait()
        self.exited = time.time()

    def wait(self, timeout) -> int:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        self._reader.join(timeout=10)
        self.exited = self.exited or time.time()
        self.log.flush()
        return code

    def time_of(self, text):
        return next((t for t, line in self.lines if text in line), None)

    @property
    def output(self):
        return "\n".join(line for _, line in self.lines)


def wait_until(predicate, timeout, what, interval=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def write_lt_config(run_dir: Path, args) -> Path:
    import yaml

    config = yaml.safe_load((EXAMPLES / "config.yaml").read_text())
    config["model"]["class_path"] = "bench_models.TimedDigitsClassifier"
    config["model"]["init_args"]["min_epoch_seconds"] = args.min_epoch_seconds
    path = run_dir / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run_side(side: str, args, run_dir: Path) -> dict:
    run_dir.mkdir(parents=True)
    record_dir = run_dir / "records"
    record_dir.mkdir()
    env = bench_env(BENCH_RECORD_DIR=str(record_dir))
    log = run_dir / "output.log"
    if side == "lt":
        experiment_dir = run_dir / "experiments"
        argv = [
            sys.executable, str(EXAMPLE_SCRIPT), "--experiment-name", "bench", "--experiment-dir", str(experiment_dir),
            "--base-config", str(write_lt_config(run_dir, args)), "--strategy", "asha",
            "--num-samples", str(args.num_samples), "--max-concurrent-trials", str(args.max_concurrent_trials),
            "--max-epochs", str(args.max_epochs), "--seed", str(args.seed),
        ]
        tune_glob = str(experiment_dir / "bench" / "session_*" / "tune")
    else:
        storage = run_dir / "ray_results"
        child = [
            sys.executable, str(Path(__file__).resolve()), "--child-plain", "--storage", str(storage),
            "--num-samples", str(args.num_samples), "--max-concurrent-trials", str(args.max_concurrent_trials),
            "--max-epochs", str(args.max_epochs), "--seed", str(args.seed), "--min-epoch-seconds", str(args.min_epoch_seconds),
        ]
        argv = child
        tune_glob = str(storage / "tune")

    def tune_dir():
        found = glob.glob(tune_glob)
        return Path(found[0]) if found else None

    def checkpoints():
        d = tune_dir()
        return {} if d is None else {p: os.stat(p).st_mtime for p in glob.glob(str(d / "*" / "checkpoint_*"))}

    out = {"side": side}
    # 1. Start, wait for the first checkpoint, SIGINT once, time the exit.
    first = Proc(argv, run_dir, env, log)
    wait_until(lambda: checkpoints() or first.proc.poll() is not None, args.timeout, "the first checkpoint")
    if first.proc.poll() is not None:
        raise RuntimeError(f"{side}: the search ended before its first checkpoint:\n{first.output[-3000:]}")
    time.sleep(args.delay)
    before_sigint = checkpoints()
    t_sig = time.time()
    first.proc.send_signal(signal.SIGINT)
    code = first.wait(args.timeout)
    t_exit = first.exited
    expected = EXIT_PAUSED if side == "lt" else 0
    if code != expected:
        raise RuntimeError(f"{side}: paused run exited {code} (expected {expected}):\n{first.output[-3000:]}")
    after = checkpoints()
    new_ckpts = [m for p, m in after.items() if p not in before_sigint]
    out.update(
        t_sig=t_sig,
        pause_latency_s=t_exit - t_sig,
        pause_ckpts=len(new_ckpts),
        pause_ckpt_s=(max(new_ckpts) - t_sig) if new_ckpts else 0.0,  # SIGINT -> last checkpoint written
        # LightningTune prints its pause report after ray.shutdown; the plain script prints after its ray.shutdown.
        shut_down_s=(first.time_of("OPTIMIZATION PAUSED") or first.time_of("plain: ray shut down") or t_exit) - t_sig,
        fit_returned_s=(first.time_of("plain: fit returned") or float("nan")) - t_sig,
        first_launch_to_sigint_s=t_sig - first.launched,
    )
    rows_at_pause = count_result_rows(tune_dir())

    # 2. Resume and time launch -> first new result row; let it finish.
    if side == "lt":
        lines = first.output.splitlines()
        index = next(i for i, line in enumerate(lines) if RESUME_HEADER in line)
        resume_argv = shlex.split(lines[index + 1].strip())
    else:
        resume_argv = child + ["--restore"]
    out["resume_command"] = shlex.join(resume_argv)
    second = Proc(resume_argv, run_dir, env, log)
    t_first_row = wait_until(
        lambda: (count_result_rows(tune_dir()) > rows_at_pause and time.time()) or (second.proc.poll() is not None and -1),
        args.timeout, "the first result after resume", interval=0.02,
    )
    code = second.wait(args.timeout)
    if code != 0 or t_first_row == -1:
        raise RuntimeError(f"{side}: resumed run exited {code}:\n{second.output[-3000:]}")
    out.update(resume_first_result_s=t_first_row - second.launched, resume_total_s=second.exited - second.launched)
    out.update(analyse(side, read_records(record_dir), read_results(tune_dir()), t_sig, t_exit, second.launched, args))
    return out


def analyse(side, records, results, t_sig, t_exit, resumed_at, args) -> dict:
    starts_per_epoch, lost_work, epoch_times, first_new_start = {}, [], [], None
    ends_after_sig = []
    for trial, rows in records.items():
        attempts = {}
        for index, row in enumerate(rows):
            if row["event"] == "epoch_start":
                attempts.setdefault(row["epoch"], []).append(row["t"])
                if row["t"] > resumed_at and (first_new_start is None or row["t"] < first_new_start):
                    first_new_start = row["t"]
                end = next((r for r in rows[index + 1:] if r["event"] in ("epoch_end", "epoch_start", "init")), None)
                if end is not None and end["event"] == "epoch_end":
                    epoch_times.append(end["t"] - row["t"])
            if row["event"] == "epoch_end" and t_sig < row["t"] < t_exit:
                ends_after_sig.append(row["t"])
        for epoch, times in attempts.items():
            starts_per_epoch[(trial, epoch)] = len(times)
            if len(times) > 1:  # every attempt but the last was cut off by the pause and thrown away
                lost_work.extend((earlier, min(t_exit, later)) for earlier, later in zip(times, times[1:], strict=False))
    # When the worker died is not recorded: an attempt counts until the paused process exited, at most one epoch.
    epoch_s = median(epoch_times)
    lost_s = sum(min(end - start, epoch_s) for start, end in lost_work)
    reported_twice = 0
    configs = []
    iter_times = []
    for rows in results.values():
        epochs = [r.get("epoch") for r in rows]
        reported_twice += len(epochs) - len(set(epochs))
        # The first iteration after a (re)start also holds the trial's start-up: leave it out.
        iter_times += [r["time_this_iter_s"] for r in rows if r.get("iterations_since_restore", 0) > 1]
        if rows:
            configs.append(json.dumps(rows[0].get("config"), sort_keys=True))
    return {
        "epochs_started_twice": sum(n - 1 for n in starts_per_epoch.values() if n > 1),
        "epochs_reported_twice": reported_twice,
        "work_lost_s": lost_s,
        "epoch_s": epoch_s,  # epoch start -> epoch end in the model (train + val, >= the floor)
        "iteration_s": median(iter_times),  # Tune's time_this_iter_s: one epoch incl. checkpoint and report
        "next_epoch_end_s": (max(ends_after_sig) - t_sig) if ends_after_sig else 0.0,
        "resume_first_epoch_s": (first_new_start - resumed_at) if first_new_start else float("nan"),
        "trials_with_results": len(results),
        "trial_rows": sum(len(r) for r in results.values()),
        "configs": sorted(configs),
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child_plain:
        return plain_main(args)
    root = Path(args.workdir).resolve() if args.workdir else Path(tempfile.mkdtemp(prefix="lt_pause_"))
    root.mkdir(parents=True, exist_ok=True)
    if args.long_epochs:
        return long_epochs_case(args, root)
    print_header(f"# pause/resume: ASHA, {args.num_samples} trials x <= {args.max_epochs} epochs, {args.max_concurrent_trials} at a time, "
          f"epochs >= {args.min_epoch_seconds} s, SIGINT {args.delay} s after the first checkpoint, {args.repeats} repeat(s)",
          root, bool(args.workdir))
    runs = []
    try:
        for repeat in range(args.repeats):
            order = args.side_list if repeat % 2 == 0 else list(reversed(args.side_list))
            for side in order:
                try:
                    result = run_side(side, args, root / f"r{repeat}_{side}")
                except (RuntimeError, TimeoutError, subprocess.TimeoutExpired) as err:
                    print(f"!! {side} repeat {repeat} failed: {err}", file=sys.stderr, flush=True)
                    result = {"side": side, "failed": True}
                result["repeat"] = repeat
                runs.append(result)
                if not result.get("failed"):
                    print(f"  repeat {repeat} {side:5s}: pause latency {fmt(result['pause_latency_s'])} s, "
                          f"resume -> first new epoch result {fmt(result['resume_first_result_s'])} s, "
                          f"epochs started twice {result['epochs_started_twice']}", flush=True)
    finally:
        if not args.workdir:
            shutil.rmtree(root, ignore_errors=True)
    report(runs, args)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "runs": runs}, indent=1, default=str))
    return 0 if runs and all(not r.get("failed") for r in runs) else 1


def long_epochs_case(args, root: Path) -> int:
    """SIGTERM with a deadline shorter than an epoch: checkpoint at a step vs losing the epoch in flight."""
    from long_epochs import BATCH, SAMPLES, main_case

    epoch_s = args.step_seconds * SAMPLES / BATCH
    args.max_epochs = min(args.max_epochs, 2)
    print_header(f"# long epochs: 2 trials at a time, {args.max_epochs} epochs of {epoch_s:g} s, SIGTERM {args.into:g} s into "
                 f"the 2nd epoch, LightningTune's grace_period {args.deadline:g} s", root, bool(args.workdir))
    try:
        runs = main_case(args, root, bench_env())
    finally:
        if not args.workdir:
            shutil.rmtree(root, ignore_errors=True)
    by = {r["side"]: r for r in runs}
    rows = []
    for label, key in (("SIGTERM -> every trial's checkpoint on disk s", "sigterm_to_checkpoints_s"),
                       ("SIGTERM -> driver exit s", "sigterm_to_exit_s"),
                       ("steps trained twice after resume", "steps_trained_twice")):
        rows.append([label] + [by[s][key] if s in by and by[s][key] is not None else "-" for s in ("lt", "plain")])
    steps = SAMPLES // BATCH
    print(f"\n## Long epochs ({epoch_s:g} s, {steps} steps of {args.step_seconds:g} s), SIGTERM with a {args.deadline:g} s deadline")
    print_table(["metric", LABELS["lt"], LABELS["plain"]], rows)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "runs": runs}, indent=1, default=str))
    return 0


def report(runs, args) -> None:
    by = {s: [r for r in runs if r["side"] == s and not r.get("failed")] for s in args.side_list}

    def m(side, key):
        return median(r.get(key) for r in by.get(side, []))

    def ratio(key):
        a, b = m("lt", key), m("plain", key)
        return a / b if a == a and b == b and b else float("nan")

    metrics = [
        ("epoch time: model epoch (train+val) s", "epoch_s"),
        ("epoch time: Tune iteration (2nd+ after a start) s", "iteration_s"),
        ("pause: SIGINT -> last epoch end in flight s", "next_epoch_end_s"),
        ("pause: SIGINT -> last checkpoint written s", "pause_ckpt_s"),
        ("pause: SIGINT -> Tuner.fit returned (plain only) s", "fit_returned_s"),
        ("pause: SIGINT -> Ray shut down s", "shut_down_s"),
        ("pause: SIGINT -> process exit s", "pause_latency_s"),
        ("pause: checkpoints written after SIGINT", "pause_ckpts"),
        ("epochs lost: epochs started twice", "epochs_started_twice"),
        ("epochs lost: epochs reported twice", "epochs_reported_twice"),
        ("training thrown away s (approx.)", "work_lost_s"),
        ("resume: launch -> first epoch starts s", "resume_first_epoch_s"),
        ("resume: launch -> first new epoch result s", "resume_first_result_s"),
        ("resume: launch -> search finished s", "resume_total_s"),
        ("trials with results / result rows", None),
    ]
    print(f"\n## Pause and resume, side by side (medians of {args.repeats} cycle(s) each)")
    rows = []
    for label, key in metrics:
        if key is None:
            rows.append([label] + [
                f"{fmt(m(s, 'trials_with_results'), 0)} / {fmt(m(s, 'trial_rows'), 0)}" if by.get(s) else "-" for s in ("lt", "plain")
            ] + ["-"])
            continue
        rows.append([label, m("lt", key), m("plain", key), ratio(key)])
    print_table(["metric", LABELS["lt"], LABELS["plain"], "LT / plain"], rows)
    lt_configs = {tuple(r["configs"]) for r in by.get("lt", [])}
    plain_configs = {tuple(r["configs"]) for r in by.get("plain", [])}
    if lt_configs and plain_configs:
        print(f"  same sampled configs on both sides: {'yes' if lt_configs == plain_configs else 'NO'}")

    print("\n## Goals (LightningTune)")
    if by.get("lt"):
        lost = m("lt", "epochs_started_twice")
        print(f"  0 epochs lost: {fmt(lost, 0)} started twice, {fmt(m('lt', 'epochs_reported_twice'), 0)} reported twice: "
              f"{'met' if lost == 0 and m('lt', 'epochs_reported_twice') == 0 else 'MISSED'}")
        budgets = [r["pause_ckpt_s"] + 2.0 for r in by["lt"]]
        within = sum(r["pause_latency_s"] <= r["pause_ckpt_s"] + 2.0 for r in by["lt"])
        print(f"  pause latency {fmt(m('lt', 'pause_latency_s'))} s <= time to the next validation + checkpoint write + 2 s "
              f"({fmt(median(budgets))} s): {within}/{len(by['lt'])} cycles {'met' if within == len(by['lt']) else 'MISSED'}")
    if by.get("lt") and by.get("plain"):
        for key, what in (("resume_first_result_s", "first new epoch result"), ("resume_first_epoch_s", "first epoch start")):
            r = ratio(key)
            print(f"  resume start-up (launch -> {what}) = {fmt(r)} x Tuner.restore's (goal <= 1.1): {'met' if r <= 1.1 else 'MISSED'}")
    print("\n  Epochs lost count epochs a trial started more than once (its model's records): plain Ray Tune's Ctrl+C stops")
    print("  trials mid-epoch and restarts them from their last checkpoint; LightningTune waits for the epoch to end.")


if __name__ == "__main__":
    sys.exit(main())
