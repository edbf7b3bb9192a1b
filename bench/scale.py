#!/usr/bin/env python
"""Scale: a session of many short trials, against hand-written Ray Tune with the same trainable, in one run.

Both sides search the same space (``scale_model.TinySpace``: a tiny regressor, one batch an epoch,
``--epochs`` epochs at most) with the same seeded ``BasicVariantGenerator`` and the same
``ASHAScheduler`` (grace 1, reduction factor 3), 1 CPU a trial, ``--concurrency`` trials at a time,
``reuse_actors=True`` (what LightningTune runs with), a checkpoint every epoch, ``num_to_keep=2``:

  raytune  A hand-written ``Tuner`` script training ``scale_model.plain_trainable``; paused by one
           SIGINT (Tune's own graceful stop), resumed with ``Tuner.restore(..., resume_unfinished=True)``.
  lt       A LightningTune session (``TuneReflowCLI(...).run(ConfigDrivenOptimizer(...))``, ASHA
           strategy); paused by ``request_pause()``, resumed with ``TuneReflowCLI.resume(...).run(resume=True)``.

Each side runs in two fresh processes: the search until ``--pause-at`` of its trials have reported
(then one pause, timed from the request to the end of the search call), and the resume (timed from
its launch to its first result, and to its end). A Tune callback in the driver records the
driver's CPU time (all its threads) at every result: "driver ms/result" is the CPU the driver spent
between two results, bucketed by how many trials had reported by then, so a cost that grows with the
session shows as a growing column. Memory: peak summed RSS of the process and all its descendants.
Snapshot: the experiment folder's top-level files (what Tune and the session rewrite per snapshot).

    python bench/scale.py                    # 60 trials: a few minutes on 2 idle cores
    python bench/scale.py --trials 1000      # the issue's size (about an hour on 2 cores)
    LT_SCALE_PROFILE=/tmp/prof python bench/scale.py --trials 100 --sides lt
        # also cProfile each child's main thread (Tune's loop) into /tmp/prof/<side>_<phase>.prof
        # (wall time per function, so waits count too; it slows the driver: not for the table)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import TreeMemory, bench_env, fmt, median, print_header, print_table  # noqa: E402

SIDES = ("raytune", "lt")
LABELS = {"raytune": "hand-written Ray Tune", "lt": "LightningTune session"}
BUCKETS = ((1, 10), (11, 100), (101, 1000), (1001, 10**9))
SEED = 0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=60, help="trials in the search (default 60; 1000 is the issue's size)")
    parser.add_argument("--epochs", type=int, default=3, help="most epochs a trial trains (ASHA max_t, default 3)")
    parser.add_argument("--concurrency", type=int, default=2, help="trials at once (default 2)")
    parser.add_argument("--pause-at", type=float, default=0.9, help="pause once this fraction of the trials has reported (default 0.9)")
    parser.add_argument("--sides", default=",".join(SIDES), help=f"comma-separated subset of {','.join(SIDES)}")
    parser.add_argument("--workdir", default=None, help="keep every run's files here (default: a temporary folder, deleted)")
    parser.add_argument("--json", default=None, help="also write all measurements to this JSON file")
    parser.add_argument("--child", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--phase", choices=("search", "resume"), help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.side_list = [s.strip() for s in args.sides.split(",") if s.strip()]
    if set(args.side_list) - set(SIDES):
        parser.error(f"unknown sides; choose from {list(SIDES)}")
    if min(args.trials, args.epochs, args.concurrency) < 1 or not 0 < args.pause_at <= 1:
        parser.error("--trials, --epochs, --concurrency must be >= 1 and 0 < --pause-at <= 1")
    return args


# --------------------------------------------------------------------------------------------
# Child side: one phase of one side, in a fresh process; writes its records to spec["out_<phase>"].
# --------------------------------------------------------------------------------------------
def _recorder(pause_after_trials, on_pause):
    """A Tune callback recording (wall, driver CPU, trials reported) at each result; pauses once."""
    from ray.tune import Callback

    class Recorder(Callback):
        def __init__(self):
            self.rows, self.trials, self.pause_requested_at = [], set(), None

        def on_trial_result(self, iteration, trials, trial, result, **info):
            self.trials.add(trial.trial_id)
            self.rows.append((time.time(), time.process_time(), len(self.trials)))
            if pause_after_trials and self.pause_requested_at is None and len(self.trials) >= pause_after_trials:
                self.pause_requested_at = time.time()
                on_pause()

    return Recorder()


def child_main(side: str, phase: str, spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    started = time.time()
    pause_after = spec["pause_after_trials"] if phase == "search" else 0
    out = {"phase": phase, "child_start": started}
    try:
        if side == "raytune":
            recorder = _recorder(pause_after, lambda: os.kill(os.getpid(), signal.SIGINT))  # a user's Ctrl+C
            _plain_tune(spec, phase, recorder)
        else:
            _lightning_tune(spec, phase, pause_after, out)
            recorder = out.pop("recorder")
    finally:
        out["search_returned"] = time.time()
    out["rows"] = recorder.rows
    out["pause_requested_at"] = recorder.pause_requested_at
    Path(spec[f"out_{phase}"]).write_text(json.dumps(out))


def _plain_tune(spec, phase, recorder) -> None:
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.basic_variant import BasicVariantGenerator

    from scale_model import TinySpace, plain_trainable

    ray.init(address="local", include_dashboard=False)  # a Ray of its own, as the session starts one (never another's cluster)
    trainable = tune.with_resources(tune.with_parameters(plain_trainable, max_epochs=spec["epochs"], seed=42), {"cpu": 1})
    path = os.path.join(spec["run_dir"], "tune")
    if phase == "resume":
        tuner = tune.Tuner.restore(path, trainable=trainable, resume_unfinished=True)
        tuner._local_tuner._run_config.callbacks = [recorder]  # a restored Tuner keeps its RunConfig; the recorder is new
    else:
        tuner = tune.Tuner(
            trainable,
            param_space=TinySpace().get_search_space(),
            tune_config=tune.TuneConfig(
                metric="val_loss",
                mode="min",
                num_samples=spec["trials"],
                search_alg=BasicVariantGenerator(max_concurrent=spec["concurrency"], random_state=SEED),
                scheduler=ASHAScheduler(time_attr="training_iteration", max_t=spec["epochs"], grace_period=1, reduction_factor=3),
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                name="tune",
                storage_path=spec["run_dir"],
                checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
                callbacks=[recorder],
                verbose=0,
            ),
        )
    tuner.fit()


def _lightning_tune(spec, phase, pause_after, out) -> None:
    from lightning_bohb import ConfigDrivenOptimizer, OptimizationConfig, SessionPaused, TuneReflowCLI
    from lightning_bohb.core.strategies import ASHAStrategy
    from scale_model import TinySpace

    holder = {}
    recorder = _recorder(pause_after, lambda: holder["cli"].request_pause())
    out["recorder"] = recorder
    if phase == "resume":
        cli = TuneReflowCLI.resume(_session_dir(spec["run_dir"]))
        holder["cli"] = cli
        try:
            cli.run(resume=True, callbacks=[recorder])
        except SessionPaused:
            pass
        return
    optimizer = ConfigDrivenOptimizer(
        {
            "seed_everything": 42,
            "trainer": {"accelerator": "cpu", "devices": 1, "deterministic": True},
            "model": {"class_path": "scale_model.TinyRegressor"},
            "data": {"class_path": "scale_model.TinyData"},
        },
        TinySpace(),
        ASHAStrategy(grace_period=1, reduction_factor=3, seed=SEED),
        OptimizationConfig(
            max_epochs=spec["epochs"],
            num_samples=spec["trials"],
            max_concurrent_trials=spec["concurrency"],
            experiment_name="scale",
            experiment_dir=spec["run_dir"],
            cpus_per_trial=1,
            checkpoints_to_keep=2,
        ),
    )
    cli = TuneReflowCLI("scale", experiment_dir=spec["run_dir"], verbose=False, enable_pause=False)
    holder["cli"] = cli
    try:
        cli.run(optimizer, callbacks=[recorder])
    except SessionPaused:
        pass


def _session_dir(run_dir: str) -> Path:
    found = sorted(Path(run_dir).glob("scale/session_*"))
    if len(found) != 1:
        raise SystemExit(f"expected one session folder under {run_dir}/scale, found {found}")
    return found[0]


# --------------------------------------------------------------------------------------------
# Parent side: run each side's two phases, sample memory, analyse, print.
# --------------------------------------------------------------------------------------------
def run_phase(side: str, phase: str, spec_path: Path, run_dir: Path) -> dict:
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", side, "--phase", phase, "--spec", str(spec_path)]
    with open(run_dir / f"{phase}.log", "wb") as log:
        t0 = time.time()
        proc = subprocess.Popen(argv, cwd=run_dir, env=bench_env(), stdout=log, stderr=subprocess.STDOUT)
        with TreeMemory(proc.pid, interval=0.5) as memory:
            code = proc.wait()
            wall = time.time() - t0
    spec = json.loads(spec_path.read_text())
    out_path = Path(spec[f"out_{phase}"])
    if code != 0 or not out_path.exists():
        tail = (run_dir / f"{phase}.log").read_text(errors="replace")[-3000:]
        print(f"!! {side} {phase} failed (exit {code}); last output:\n{tail}", file=sys.stderr, flush=True)
        return {"failed": True, "wall_s": wall, "peak_rss_mib": memory.peak_mib}
    out = json.loads(out_path.read_text())
    out.update(launched=t0, wall_s=wall, peak_rss_mib=memory.peak_mib)
    return out


def _tune_dir(side: str, run_dir: Path) -> Path:
    if side == "raytune":
        return run_dir / "tune"
    return _session_dir(str(run_dir)) / "tune"


def _size(paths) -> int:
    return sum(p.stat().st_size for p in paths if p.is_file())


def run_side(side: str, args, root: Path) -> dict:
    run_dir = root / side
    run_dir.mkdir(parents=True)
    spec = {
        "trials": args.trials,
        "epochs": args.epochs,
        "concurrency": args.concurrency,
        "pause_after_trials": max(1, int(args.trials * args.pause_at)) if args.pause_at < 1 else 0,
        "run_dir": str(run_dir),
        "out_search": str(run_dir / "search.json"),
        "out_resume": str(run_dir / "resume.json"),
    }
    spec_path = run_dir / "spec.json"
    spec_path.write_text(json.dumps(spec))
    search = run_phase(side, "search", spec_path, run_dir)
    result = {"side": side, "search": search}
    if search.get("failed"):
        return result
    if spec["pause_after_trials"]:
        result["resume"] = run_phase(side, "resume", spec_path, run_dir)
    tune_dir = _tune_dir(side, run_dir)
    result["snapshot_bytes"] = _size(tune_dir.iterdir())
    result["tune_dir_bytes"] = _size(tune_dir.rglob("*"))
    return result


def analyse(result: dict) -> dict:
    search, resume = result["search"], result.get("resume") or {}
    rows = search.get("rows", []) + resume.get("rows", [])
    per_bucket = {bucket: [] for bucket in BUCKETS}
    for phase in (search, resume):
        phase_rows = phase.get("rows") or []
        for (_, cpu0, _), (_, cpu1, trials) in zip(phase_rows, phase_rows[1:], strict=False):
            for low, high in BUCKETS:
                if low <= trials <= high:
                    per_bucket[(low, high)].append((cpu1 - cpu0) * 1000)
    resumed_rows = resume.get("rows") or []
    return {
        "results": len(rows),
        "bucket_ms": {b: (median(v) if v else None, (sum(v) / len(v)) if v else None, len(v)) for b, v in per_bucket.items()},
        "search_wall_s": search.get("wall_s"),
        "pause_s": (search["search_returned"] - search["pause_requested_at"]) if search.get("pause_requested_at") else None,
        "resume_first_result_s": (resumed_rows[0][0] - resume["launched"]) if resumed_rows else None,
        "resume_wall_s": resume.get("wall_s"),
        "total_wall_s": (search.get("wall_s") or 0) + (resume.get("wall_s") or 0),
        "peak_rss_mib": max(search.get("peak_rss_mib") or 0, resume.get("peak_rss_mib") or 0),
        "snapshot_kib": result.get("snapshot_bytes", 0) / 1024,
        "tune_dir_mib": result.get("tune_dir_bytes", 0) / 2**20,
        "failed": bool(search.get("failed") or resume.get("failed")),
    }


def report(results, args) -> None:
    stats = {r["side"]: analyse(r) for r in results}
    buckets = [b for b in BUCKETS if b[0] <= args.trials]
    print("\n## Driver CPU per result (ms: median / mean / results), by trials reported so far")
    print_table(
        ["side", *[f"trials {lo}-{min(hi, args.trials)}" for lo, hi in buckets]],
        [[LABELS[s], *[" / ".join(fmt(x, 1) if isinstance(x, float) else str(x) for x in st["bucket_ms"][b]) for b in buckets]]
         for s, st in stats.items()],
    )
    print(f"\n## Whole session: {args.trials} trials, ASHA (max_t {args.epochs}), {args.concurrency} at a time, "
          f"paused once at {int(args.pause_at * 100)}% of the trials and resumed")
    print_table(
        ["side", "results", "total wall s", "search s", "pause s", "resume -> 1st result s", "resume s",
         "peak RSS MiB", "snapshot KiB", "experiment MiB"],
        [[LABELS[s], st["results"], st["total_wall_s"], st["search_wall_s"], st["pause_s"], st["resume_first_result_s"],
          st["resume_wall_s"], st["peak_rss_mib"], st["snapshot_kib"], st["tune_dir_mib"]] for s, st in stats.items()],
    )
    if "lt" in stats and "raytune" in stats:
        lt, rt = stats["lt"], stats["raytune"]
        print("\n## Goals")
        print(f"  total wall lt / raytune = {fmt(lt['total_wall_s'] / rt['total_wall_s'])} (goal <= 1.1)")
        print(f"  peak memory lt / raytune = {fmt(lt['peak_rss_mib'] / rt['peak_rss_mib'])} (goal <= 1.1)")
        firsts = [lt["bucket_ms"][b][0] for b in buckets if lt["bucket_ms"][b][0] is not None]
        if len(firsts) >= 2:
            print(f"  lt driver ms/result, last bucket / first bucket = {fmt(firsts[-1] / firsts[0])} (goal <= 2: flat)")
    if any(st["failed"] for st in stats.values()):
        print("\n!! a phase FAILED; see its log")


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        profile_dir = os.environ.get("LT_SCALE_PROFILE")  # a folder: profile each child's driver (main thread) there
        if not profile_dir:
            child_main(args.child, args.phase, args.spec)
            return 0
        import cProfile

        profiler = cProfile.Profile()
        try:
            profiler.runcall(child_main, args.child, args.phase, args.spec)
        finally:
            profiler.dump_stats(os.path.join(profile_dir, f"{args.child}_{args.phase}.prof"))
        return 0
    root = Path(args.workdir).resolve() if args.workdir else Path(tempfile.mkdtemp(prefix="lt_scale_"))
    root.mkdir(parents=True, exist_ok=True)
    print_header(f"# scale: {args.trials} trials, ASHA max_t {args.epochs}, {args.concurrency} at a time, sides {args.side_list}",
                 root, bool(args.workdir))
    results = []
    try:
        for side in args.side_list:
            result = run_side(side, args, root)
            results.append(result)
            st = analyse(result)
            print(f"  {side:8s} total wall {fmt(st['total_wall_s'])} s  results {st['results']}  pause {fmt(st['pause_s'])} s"
                  f"  resume->1st {fmt(st['resume_first_result_s'])} s  peak {fmt(st['peak_rss_mib'], 0)} MiB"
                  f"  ({os.getloadavg()[0]:.2f} load)", flush=True)
    finally:
        if not args.workdir:
            shutil.rmtree(root, ignore_errors=True)
    report(results, args)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results}, indent=1, default=str))
    return 0 if all(not analyse(r)["failed"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
