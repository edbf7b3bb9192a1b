#!/usr/bin/env python
"""Overhead of LightningTune: the same search run side by side, in one benchmark run.

Variants (each run in its own fresh Python process, with its own ``ray.init``, shut down after):

  bare           Bare Lightning: one ``python -c`` process per trial that trains that config,
                 ``--concurrency`` of them at a time (the "plain processes" baseline; no Ray).
  raytune        Hand-written Ray Tune + Lightning: a function trainable that builds the model,
                 datamodule and Trainer and reports metrics + a checkpoint each epoch with
                 ``ray.tune.report``; ``Tuner`` with Tune's defaults (``reuse_actors=False``).
  raytune-reuse  The same hand-written script with ``TuneConfig(reuse_actors=True)``.
  lt             LightningTune: ``ConfigDrivenOptimizer(...).run()``.
  lt-dashboard   ``lt-session`` watched by ``lightning-bohb dashboard`` (read-only), whose page data
                 (``/api/sessions`` and every session's ``/api/session``) is fetched every 1.5 s, as
                 the open page does, for the whole run (the dashboard's own process is not counted).
  lt-session     LightningTune through ``TuneReflowCLI`` (what ``examples/optimize.py`` runs:
                 pause control actor, session state and summary files).

All variants train the same model class (``bench/bench_models.py``, the example's digits MLP),
the same sampled configs (drawn once here, given to Tune as ``points_to_evaluate``), the same
epochs and seed, the same Trainer settings, and keep the same ``CheckpointConfig(num_to_keep=2)``.
Runs are alternated (forward, then reversed order, ...) ``--repeats`` times; the table shows medians.

Wall time is measured by this process from the launch of the variant's process to its exit
(Python start-up, imports, Ray start-up and shut-down included); "excl. init" subtracts the time
``ray.init`` took inside it. Peak memory: summed RSS of the variant's process and all its
descendants (Ray's GCS, raylet, workers, trial processes), sampled every 0.2 s.

    python bench/overhead.py                       # defaults: about 5 minutes on 2 idle cores
    python bench/overhead.py --trials 8 --epochs 4 --repeats 5
    python bench/overhead.py --variants bare,raytune,lt --repeats 1
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

from _common import (  # noqa: E402
    TreeMemory,
    bench_env,
    fmt,
    median,
    print_header,
    print_table,
    read_records,
    sample_configs,
)

VARIANTS = ("bare", "raytune", "raytune-reuse", "lt", "lt-session", "lt-dashboard")
DEFAULT_VARIANTS = "bare,raytune,raytune-reuse,lt,lt-session"
LABELS = {
    "bare": "bare Lightning (python -c per trial)",
    "raytune": "hand-written Ray Tune (Tune defaults)",
    "raytune-reuse": "hand-written Ray Tune, reuse_actors=True",
    "lt": "LightningTune ConfigDrivenOptimizer",
    "lt-session": "LightningTune TuneReflowCLI session",
    "lt-dashboard": "LightningTune session, dashboard open",
}
BARE_TRIAL_CODE = (
    "import json, sys; from bench_models import train_bare; "
    "train_bare(json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))"
)
SEED = 42  # the example config's seed_everything


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=6, help="trials in the search (default 6)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per trial (default 3)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each variant, alternated (default 2)")
    parser.add_argument("--concurrency", type=int, default=2, help="trials at once, in every variant (default 2)")
    parser.add_argument("--num-cpus", type=int, default=None, help="ray.init(num_cpus=...) (default: max(2, concurrency))")
    parser.add_argument("--variants", default=DEFAULT_VARIANTS, help=f"comma-separated subset of {','.join(VARIANTS)}")
    parser.add_argument("--config-seed", type=int, default=0, help="seed of the sampled configs (default 0)")
    parser.add_argument("--workdir", default=None, help="keep every run's files here (default: a temporary folder, deleted)")
    parser.add_argument("--json", default=None, help="also write all measurements to this JSON file")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.variant_list = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(args.variant_list) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    if min(args.trials, args.epochs, args.repeats, args.concurrency) < 1:
        parser.error("--trials, --epochs, --repeats and --concurrency must be >= 1")
    args.num_cpus = args.num_cpus or max(2, args.concurrency)
    if set(args.variant_list) & {"lt-session", "lt-dashboard"} and args.num_cpus != os.cpu_count():
        print(f"note: lt-session and lt-dashboard start their own Ray, with all {os.cpu_count()} CPUs, not --num-cpus {args.num_cpus}")
    return args


# --------------------------------------------------------------------------------------------
# Child side: one variant, in a fresh process. Writes its own timings to spec["out"].
# --------------------------------------------------------------------------------------------
def child_main(variant: str, spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    timings = {"process_start": _process_start()}
    if variant == "bare":
        timings.update(run_bare(spec))
    else:
        timings.update(run_with_ray(variant, spec))
    timings["child_end"] = time.time()  # what is left after this is the interpreter's exit
    Path(spec["out"]).write_text(json.dumps(timings))


def _process_start() -> float:
    import psutil

    return psutil.Process().create_time()


def run_bare(spec) -> dict:
    """Plain processes: ``python -c`` per trial, ``concurrency`` at a time, one CPU thread each."""
    env = bench_env(OMP_NUM_THREADS=str(spec["cpus_per_trial"]))  # what Ray sets in a 1-CPU worker
    pending = list(enumerate(spec["configs"]))
    running, codes = [], {}
    t0 = time.time()
    while pending or running:
        while pending and len(running) < spec["concurrency"]:
            index, config = pending.pop(0)
            name = f"trial_{index:03d}"
            argv = [sys.executable, "-c", BARE_TRIAL_CODE, json.dumps(config), str(spec["epochs"]), str(SEED)]
            proc = subprocess.Popen(argv, env={**env, "BENCH_TRIAL_NAME": name}, cwd=spec["run_dir"])
            running.append((name, proc))
        time.sleep(0.02)
        for name, proc in list(running):
            if proc.poll() is not None:
                codes[name] = proc.returncode
                running.remove((name, proc))
    failed = {k: v for k, v in codes.items() if v != 0}
    if failed:
        raise SystemExit(f"bare trials failed: {failed}")
    return {"prepare_s": 0.0, "ray_init_s": 0.0, "search_s": time.time() - t0, "shutdown_s": 0.0, "search_end": time.time()}


def run_with_ray(variant: str, spec) -> dict:
    """Mirrors a real script: imports and (for LightningTune) the optimizer first, then ray.init, then the search."""
    t = time.time()
    import ray

    session = variant in ("lt-session", "lt-dashboard")
    if variant.startswith("lt"):
        search = _lightning_tune_search(spec, session=session)  # validates the config: imports Lightning
    else:
        search = _hand_written_search(spec, reuse=variant == "raytune-reuse")  # imports Lightning and the model
    prepare_s = time.time() - t
    if session:
        return _session_owns_ray(search, prepare_s)
    t = time.time()
    ray.init(address="local", num_cpus=spec["num_cpus"], include_dashboard=False)
    ray_init_s = time.time() - t
    t = time.time()
    search()
    search_end = time.time()
    search_s = search_end - t
    ray.shutdown()
    return {"prepare_s": prepare_s, "ray_init_s": ray_init_s, "search_s": search_s, "shutdown_s": time.time() - search_end,
            "search_end": search_end}


def _session_owns_ray(search, prepare_s: float) -> dict:
    """A session starts its own Ray, as examples/optimize.py's does (on a thread, while it sets itself up) and
    shuts it down: "ray.init" is the time the session waited for it, "ray.shutdown" the time its shutdown took."""
    from lightning_bohb._ray.ray_start import RayStart

    marks: dict = {}
    wait, shutdown = RayStart.wait, RayStart.shutdown

    def timed_wait(self):
        t = time.time()
        try:
            return wait(self)
        finally:
            marks.setdefault("ray_init_s", time.time() - t)

    def timed_shutdown(self):
        if self.owned and "search_end" not in marks:
            marks["search_end"] = time.time()
            shutdown(self)
            marks["shutdown_s"] = time.time() - marks["search_end"]
        else:
            shutdown(self)

    RayStart.wait, RayStart.shutdown = timed_wait, timed_shutdown
    t = time.time()
    search()
    return {"prepare_s": prepare_s, "ray_init_s": marks["ray_init_s"], "search_s": marks["search_end"] - t - marks["ray_init_s"],
            "shutdown_s": marks["shutdown_s"], "search_end": marks["search_end"]}


def _space():
    from ray import tune

    # examples/optimize.py DigitsSearchSpace; every trial's values come from points_to_evaluate.
    return {
        "lr": tune.loguniform(1e-4, 3e-2),
        "hidden_size": tune.choice([16, 32, 64, 128]),
        "num_layers": tune.choice([1, 2, 3]),
        "batch_size": tune.choice([32, 64, 128]),
    }


def _fixed_configs(spec):
    from ray.tune.search.basic_variant import BasicVariantGenerator

    # The limit must reach the generator itself (TuneConfig's max_concurrent_trials does not for it).
    return BasicVariantGenerator(points_to_evaluate=[dict(c) for c in spec["configs"]], max_concurrent=spec["concurrency"])


def _hand_written_search(spec, reuse: bool):
    """What a user writes by hand with Ray Tune's Tuner and the trainable in bench_models."""
    from bench_models import plain_tune_trainable

    def search():
        _hand_written_fit(spec, reuse, plain_tune_trainable)

    return search


def _hand_written_fit(spec, reuse, plain_tune_trainable) -> None:
    from ray import tune

    trainable = tune.with_resources(
        tune.with_parameters(plain_tune_trainable, max_epochs=spec["epochs"], seed=SEED),
        {"cpu": spec["cpus_per_trial"]},
    )
    tuner = tune.Tuner(
        trainable,
        param_space=_space(),
        tune_config=tune.TuneConfig(
            metric="val_loss",
            mode="min",
            num_samples=len(spec["configs"]),
            search_alg=_fixed_configs(spec),
            reuse_actors=reuse,
        ),
        run_config=tune.RunConfig(
            name="tune",
            storage_path=spec["run_dir"],
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            verbose=0,
        ),
    )
    results = tuner.fit()
    if results.errors:
        raise SystemExit(f"hand-written search had failed trials: {results.errors}")


def _lightning_tune_search(spec, session: bool):
    from lightning_bohb import ConfigDrivenOptimizer, OptimizationConfig, SearchSpace, TuneReflowCLI
    from lightning_bohb.core.strategies import Strategy

    class BenchSpace(SearchSpace):
        VERSION = "1.0.0"

        def get_search_space(self):
            return _space()

        def get_metric_config(self):
            return {"metric": "val_loss", "mode": "min"}

    class FixedConfigs(Strategy):
        """The pre-drawn configs, in order (so every variant trains exactly the same trials)."""

        name = "fixed"

        def __init__(self, configs, concurrency):
            super().__init__(None)
            self.configs, self.concurrency = configs, concurrency

        def build(self, max_t, max_concurrent, seed):
            return _fixed_configs({"configs": self.configs, "concurrency": max_concurrent or self.concurrency}), None

    base_config = {
        "seed_everything": SEED,
        "trainer": {"accelerator": "cpu", "devices": 1, "deterministic": True, "max_epochs": spec["epochs"]},
        "model": {
            "class_path": "bench_models.TimedDigitsClassifier",
            "init_args": {"min_epoch_seconds": 0.0, "hidden_size": 64, "num_layers": 2, "dropout": 0.1, "lr": 0.001},
        },
        "data": {"class_path": "digits_model.DigitsDataModule", "init_args": {"batch_size": 64}},
    }
    optimizer = ConfigDrivenOptimizer(
        base_config,
        BenchSpace(),
        FixedConfigs(spec["configs"], spec["concurrency"]),
        OptimizationConfig(
            max_epochs=spec["epochs"],
            num_samples=len(spec["configs"]),
            max_concurrent_trials=spec["concurrency"],
            experiment_name="bench",
            experiment_dir=spec["run_dir"],
            cpus_per_trial=spec["cpus_per_trial"],
            checkpoints_to_keep=2,
        ),
    )

    def search():
        if session:
            results = TuneReflowCLI("bench", experiment_dir=spec["run_dir"], verbose=False).run(optimizer)
        else:
            results = optimizer.run(output_dir=spec["run_dir"], experiment_folder="tune", verbose=0)
        if results.errors:
            raise SystemExit(f"LightningTune search had failed trials: {results.errors}")

    return search


# --------------------------------------------------------------------------------------------
# Parent side: launch, time and sample each run; analyse; print the tables.
# --------------------------------------------------------------------------------------------
def run_one(variant: str, args, configs, run_dir: Path) -> dict:
    run_dir.mkdir(parents=True)
    record_dir = run_dir / "records"
    record_dir.mkdir()
    spec = {
        "configs": configs,
        "epochs": args.epochs,
        "concurrency": args.concurrency,
        "num_cpus": args.num_cpus,
        "cpus_per_trial": 1,
        "run_dir": str(run_dir),
        "out": str(run_dir / "timings.json"),
    }
    spec_path = run_dir / "spec.json"
    spec_path.write_text(json.dumps(spec))
    log_path = run_dir / "output.log"
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", variant, "--spec", str(spec_path)]
    with open(log_path, "wb") as log:
        watcher = DashboardWatcher(run_dir) if variant == "lt-dashboard" else None
        t0 = time.time()
        proc = subprocess.Popen(argv, cwd=run_dir, env=bench_env(BENCH_RECORD_DIR=str(record_dir)), stdout=log, stderr=subprocess.STDOUT)
        with TreeMemory(proc.pid) as memory:
            code = proc.wait()
            wall = time.time() - t0
        if watcher is not None:
            watcher.stop()
    result = {"variant": variant, "rc": code, "wall_s": wall, "peak_rss_mib": memory.peak_mib, "peak_processes": memory.peak_processes}
    if code != 0 or not Path(spec["out"]).exists():
        tail = log_path.read_text(errors="replace")[-3000:]
        print(f"!! {variant} failed (exit {code}); last output:\n{tail}", file=sys.stderr, flush=True)
        result["failed"] = True
        return result
    timings = json.loads(Path(spec["out"]).read_text())
    result.update(timings)
    result.update(analyse_records(read_records(record_dir), args, t0, t0 + wall))
    if "last_epoch_end" in result:  # last epoch end -> the search call returned (Tune's wind-down, best config)
        result["wind_down_s"] = result["search_end"] - result["last_epoch_end"]
    result["exit_s"] = t0 + wall - result["child_end"]  # the driver's interpreter exit (atexit handlers, teardown)
    result["excl_init_s"] = wall - result.get("ray_init_s", 0.0)
    return result


class DashboardWatcher:
    """``lightning-bohb dashboard RUN_DIR --read-only`` and a client fetching what its page polls, every 1.5 s."""

    def __init__(self, run_dir: Path) -> None:
        import re
        import threading

        argv = [sys.executable, "-m", "lightning_bohb", "dashboard", str(run_dir), "--port", "0", "--read-only"]
        self.proc = subprocess.Popen(argv, cwd=run_dir, env=bench_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline, url = time.time() + 60, None
        while url is None and time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line and self.proc.poll() is not None:
                break
            found = re.search(r"(http://127\.0\.0\.1:\d+)/\?token=(\S+)", line)
            if found:
                url = found.groups()
        if url is None:
            self.proc.kill()
            raise SystemExit("the dashboard did not print its URL within 60 s")
        self.base, self.token = url
        self.polls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _get(self, path: str):
        import urllib.parse
        import urllib.request

        separator = "&" if "?" in path else "?"
        with urllib.request.urlopen(f"{self.base}{path}{separator}token={urllib.parse.quote(self.token)}", timeout=10) as reply:
            return json.loads(reply.read() or b"null")

    def _poll(self) -> None:
        import urllib.parse

        while not self._stop.wait(1.5):
            try:
                sessions = self._get("/api/sessions")
                rows = sessions.get("sessions", []) if isinstance(sessions, dict) else sessions or []
                for row in rows:
                    if isinstance(row, dict) and row.get("key"):
                        self._get(f"/api/session?key={urllib.parse.quote(str(row['key']))}")
                self.polls += 1
            except OSError:
                pass

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        print(f"# lt-dashboard: {self.polls} page refreshes fetched during the run", flush=True)


def analyse_records(records, args, launched: float, exited: float) -> dict:
    """Where the time went, from the model's own epoch records."""
    spans, pids, complete, fresh_ages, threads = [], set(), 0, [], set()
    seen_pids = set()
    for rows in sorted(records.values(), key=lambda rows: rows[0]["t"] if rows else 0):
        starts = [r["t"] for r in rows if r["event"] == "epoch_start"]
        ends = [r for r in rows if r["event"] == "epoch_end"]
        init = next((r for r in rows if r["event"] == "init"), None)
        if init is not None:
            threads.add(init.get("threads"))
            if init["pid"] not in seen_pids:  # first trial of its process: the age is its start-up + imports
                fresh_ages.append(init.get("process_age"))
            seen_pids.add(init["pid"])
        pids.update(r["pid"] for r in rows)
        complete += len({r["epoch"] for r in ends}) == args.epochs
        if starts and ends:
            spans.append((starts[0], ends[-1]["t"]))
    if not spans:
        return {"trials_complete": complete, "trial_processes": len(pids)}
    first_starts = sorted(s for s, _ in spans)
    last_ends = sorted(e for _, e in spans)
    c = args.concurrency
    # The k-th trial to start (k >= c) waited for the (k-c)-th trial to end: the gap is the switch cost.
    gaps = [first_starts[k] - last_ends[k - c] for k in range(c, len(first_starts))]
    return {
        "trials_complete": complete,
        "trial_processes": len(pids),
        "torch_threads": sorted(t for t in threads if t is not None),
        "first_epoch_s": first_starts[0] - launched,  # launch -> first epoch of any trial
        "switch_gap_s": median(gaps),  # a trial ends -> the next trial's first epoch starts
        "train_s": median(e - s for s, e in spans),  # one trial: first epoch start -> last epoch end
        "tail_s": exited - last_ends[-1],  # last epoch end -> process exit
        "last_epoch_end": last_ends[-1],
        "fresh_process_age_s": median(fresh_ages),  # process start -> model built, first trial of each process
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        child_main(args.child, args.spec)
        return 0
    configs = sample_configs(args.trials, args.config_seed)
    root = Path(args.workdir).resolve() if args.workdir else Path(tempfile.mkdtemp(prefix="lt_overhead_"))
    root.mkdir(parents=True, exist_ok=True)
    print_header(f"# overhead: {args.trials} trials x {args.epochs} epochs, {args.concurrency} at a time, "
          f"ray.init(num_cpus={args.num_cpus}), {args.repeats} repeat(s) of {args.variant_list}", root, bool(args.workdir))
    runs = []
    try:
        for repeat in range(args.repeats):
            order = args.variant_list if repeat % 2 == 0 else list(reversed(args.variant_list))
            for variant in order:
                result = run_one(variant, args, configs, root / f"r{repeat}_{variant}")
                result["repeat"] = repeat
                runs.append(result)
                print(
                    f"  repeat {repeat} {variant:14s} wall {fmt(result['wall_s'])} s"
                    f"  ray.init {fmt(result.get('ray_init_s'))} s  switch gap {fmt(result.get('switch_gap_s'))} s"
                    f"  peak {fmt(result['peak_rss_mib'], 0)} MiB"
                    f"  trial processes {result.get('trial_processes', '-')}"
                    f"  complete {result.get('trials_complete', '-')}/{args.trials}",
                    flush=True,
                )
    finally:
        if not args.workdir:
            shutil.rmtree(root, ignore_errors=True)
    report(runs, args)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "configs": configs, "runs": runs}, indent=1, default=str))
    return 0 if all(not r.get("failed") for r in runs) else 1


def report(runs, args) -> None:
    by = {v: [r for r in runs if r["variant"] == v and not r.get("failed")] for v in args.variant_list}
    by = {v: rs for v, rs in by.items() if rs}
    med = {v: median(r["wall_s"] for r in rs) for v, rs in by.items()}
    med_excl = {v: median(r["excl_init_s"] for r in rs) for v, rs in by.items()}

    def ratio(v, base, table=None):
        table = med if table is None else table
        if v not in table or base not in table or not table[base]:
            return float("nan")
        return table[v] / table[base]

    def m(rs, key):
        return median(r.get(key) for r in rs)

    print()
    print(f"## Whole search: {args.trials} trials x {args.epochs} epochs, {args.concurrency} trials at a time "
          f"(bare: {args.concurrency} plain processes at a time, OMP_NUM_THREADS=1 as Ray sets in a 1-CPU worker); "
          f"medians of {args.repeats} run(s)")
    print_table(
        ["variant", "wall s", "excl. ray.init s", "vs hand-written", "vs hw+reuse", "vs bare", "peak RSS MiB"],
        [[LABELS[v], med[v], med_excl[v], ratio(v, "raytune"), ratio(v, "raytune-reuse"), ratio(v, "bare"), m(rs, "peak_rss_mib")]
         for v, rs in by.items()],
    )

    print("\n## Ratios excluding ray.init (same runs)")
    print_table(
        ["variant", "vs hand-written", "vs hw+reuse", "vs bare"],
        [[LABELS[v], ratio(v, "raytune", med_excl), ratio(v, "raytune-reuse", med_excl), ratio(v, "bare", med_excl)] for v in by],
    )

    print("\n## Where the time goes (medians, seconds)")
    print_table(
        ["variant", "imports+setup", "ray.init", "search", "1st epoch at", "switch gap", "trial train",
         "tail", "wind-down", "ray.shutdown", "exit", "fresh proc age", "trial procs"],
        [[v, m(rs, "prepare_s"), m(rs, "ray_init_s"), m(rs, "search_s"), m(rs, "first_epoch_s"), m(rs, "switch_gap_s"),
          m(rs, "train_s"), m(rs, "tail_s"), m(rs, "wind_down_s"), m(rs, "shutdown_s"), m(rs, "exit_s"), m(rs, "fresh_process_age_s"),
          m(rs, "trial_processes")]
         for v, rs in by.items()],
    )
    print("  imports+setup: driver imports (+ LightningTune's config validation) before ray.init;")
    print("  1st epoch at: launch -> first epoch of any trial starts; switch gap: a trial ends -> the next trial's")
    print("  first epoch starts (the per-trial start-up cost); trial train: one trial's first epoch start -> last")
    print("  epoch end; tail: last epoch end -> process exit, of which wind-down: -> the search call returned,")
    print("  ray.shutdown, and exit: the driver interpreter's own exit; fresh proc age: a trial process's age when it built")
    print("  its first model (start-up + imports; Ray's pre-started workers include idle time); trial procs:")
    print("  distinct processes that trained (fewer than the trials: actors were reused).")

    print("\n## Every run, in the order run")
    print_table(
        ["repeat", "variant", "wall s", "ray.init s", "search s", "peak RSS MiB", "peak procs", "complete"],
        [[r["repeat"], r["variant"], r["wall_s"], r.get("ray_init_s"), r.get("search_s"), r["peak_rss_mib"], r.get("peak_processes"),
          "FAILED" if r.get("failed") else f"{r.get('trials_complete')}/{args.trials}"]
         for r in runs],
    )

    print("\n## Goals")
    if "lt-dashboard" in med and "lt-session" in med:
        print(f"      lt-dashboard / lt-session = {fmt(ratio('lt-dashboard', 'lt-session'))} (the dashboard's cost; goal: within noise)")
    for lt in ("lt", "lt-session"):
        if lt not in med:
            continue
        if "raytune" in med:
            print(f"  (a) {lt} / hand-written Ray Tune = {fmt(ratio(lt, 'raytune'))} (goal <= 1.03): "
                  f"{'met' if ratio(lt, 'raytune') <= 1.03 else 'MISSED'}")
        if "raytune-reuse" in med:
            print(f"      {lt} / hand-written with reuse_actors=True = {fmt(ratio(lt, 'raytune-reuse'))} (the library's own overhead)")
        if "bare" in med:
            print(f"  (b) {lt} / bare Lightning = {fmt(ratio(lt, 'bare'))} (goal <= 1.5): "
                  f"{'met' if ratio(lt, 'bare') <= 1.5 else 'MISSED'}")
    if "raytune" in med and "bare" in med:
        print(f"      hand-written Ray Tune / bare Lightning = {fmt(ratio('raytune', 'bare'))} (the issue quotes 3.8-4.7x)")


if __name__ == "__main__":
    sys.exit(main())
