#!/usr/bin/env python
"""Search quality: regret of BOHB and its floors on MF-Hartmann-6 for a budget of epochs, and the product's own cost.

The benchmark (``mf_hartmann.py``): MF-Hartmann-6 as mf-prior-bench 1.10 defines it, ``mfh6`` preset
(bias 0.5, noise 0.1), fidelity = epoch, 1..27 epochs (HyperBand with eta 3: rungs at 1, 3, 9, 27).
Each optimizer gets ``--budget`` epochs (1000: about three HyperBand iterations); a promoted trial is
charged only its extra epochs (a config evaluated again at a higher fidelity pays the difference).
Regret = the best 27-epoch value found within the budget minus the optimum -3.32237 (3.32237, as if
the best value were 0, the function's supremum, while nothing has reached 27 epochs yet).

Optimizers (``--only``, comma list; default all):

  hpbandster-bohb   The reference BOHB (hpbandster 0.7.4, Falkner et al. 2018), its defaults, driven in
                    process: its ``Master`` loop with the Pyro dispatcher replaced by a direct call
                    (one worker, sequential, as hpbandster runs with one worker).
  hyperband         hpbandster's HyperBand (random configs), the same loop: the floor BOHB must beat.
  random            hpbandster's RandomSearch: every config trained 27 epochs.
  dehb              DEHB 0.1.2 (Awad et al. 2021), one worker, through its ask/tell interface.
  product-bohb-c1   LightningTune's BOHB (``BOHBStrategy(reduction_factor=3)``, ``OptimizationConfig(max_epochs=27,
  product-bohb-c2   max_concurrent_trials=1|2, seed=SEED)``, ``ConfigDrivenOptimizer(...).run()``) training
                    ``hartmann_model.HartmannModule`` (validation loss at epoch e = the function at fidelity e).
  raytune-bohb-c1   The same search in plain Ray Tune as a user writes it: ``tune.Tuner`` with ``TuneBOHB`` +
  raytune-bohb-c2   ``HyperBandForBOHB``, the same module in a hand-written trainable (a Lightning Trainer that
                    reports + checkpoints each epoch); ``reuse_actors=True``, as the product runs.

The Ray rows share one local Ray (``ray.init`` once per bench process, ``--num-cpus``, 1 CPU a trial);
a driver-side Tune callback counts the epochs (one result = one epoch) and, once the budget is spent,
tells the search algorithm it is finished: no new trial starts, the trials already started finish
(their epochs past the budget are trained, timed, and not counted for the regret). The regret uses
the function's exact value for the trial's config at that epoch; the value the trial reported is
checked against it ("max |reported - exact|" in the JSON).

Results are cached per optimizer and seed in ``--results`` (JSON): a run with ``--only`` replaces
those optimizers' runs for the seeds it runs and keeps every other row, so the product rows can be
rerun alone later. The tables and the plot (``--results`` with ``.png``: median regret against epochs
spent, IQR shaded) are made from everything in the file.

    python bench/search_quality.py --only hpbandster-bohb,hyperband,random,dehb --seeds 10   # ~3 min
    python bench/search_quality.py --only product-bohb-c1,raytune-bohb-c1 --seeds 2          # minutes per run
    python bench/search_quality.py --only product-bohb-c1,product-bohb-c2 --seeds 10         # then merged
    python bench/search_quality.py --report      # tables and plot from the results file, nothing run
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Dict, List, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BENCH, fmt, print_header, print_table  # noqa: E402
from mf_hartmann import DIMS, MAX_FIDELITY, OPTIMUM, check_against_mfpbench, mf_hartmann6  # noqa: E402

ETA = 3
IN_PROCESS = ("hpbandster-bohb", "hyperband", "random", "dehb")
ON_RAY = ("product-bohb-c1", "product-bohb-c2", "raytune-bohb-c1", "raytune-bohb-c2")
OPTIMIZERS = IN_PROCESS + ON_RAY
LABELS = {
    "hpbandster-bohb": "reference BOHB (hpbandster 0.7.4)",
    "hyperband": "HyperBand (hpbandster), floor",
    "random": "random search (hpbandster), floor",
    "dehb": "DEHB 0.1.2",
    "product-bohb-c1": "LightningTune BOHB, concurrency 1",
    "product-bohb-c2": "LightningTune BOHB, concurrency 2",
    "raytune-bohb-c1": "plain Ray Tune BOHB, concurrency 1",
    "raytune-bohb-c2": "plain Ray Tune BOHB, concurrency 2",
}
REFERENCE = "hpbandster-bohb"
FRACTIONS = (0.25, 0.5, 1.0)
NOTHING_YET = -OPTIMUM  # the regret while no config has reached 27 epochs (the best value taken as 0)
DEFAULT_RESULTS = BENCH / "results" / "search_quality.json"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(OPTIMIZERS), help=f"comma-separated subset of {','.join(OPTIMIZERS)} (default all)")
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1 per optimizer (default 10)")
    parser.add_argument("--first-seed", type=int, default=0, help="first seed (default 0)")
    parser.add_argument("--budget", type=int, default=1000, help="epochs per run (default 1000)")
    parser.add_argument("--num-cpus", type=int, default=2, help="ray.init(num_cpus=...) for the Ray rows (default 2)")
    parser.add_argument("--results", default=str(DEFAULT_RESULTS), help=f"JSON cache of every run, merged (default {DEFAULT_RESULTS})")
    parser.add_argument("--report", action="store_true", help="only print the tables and write the plot from --results")
    parser.add_argument("--workdir", default=None, help="keep the Ray rows' session and Tune folders here (default: temporary, deleted)")
    args = parser.parse_args(argv)
    args.names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = sorted(set(args.names) - set(OPTIMIZERS))
    if unknown:
        parser.error(f"unknown optimizers {unknown}; choose from {list(OPTIMIZERS)}")
    if args.seeds < 1 or args.budget < MAX_FIDELITY or args.num_cpus < 1:
        parser.error(f"--seeds and --num-cpus must be >= 1 and --budget >= {MAX_FIDELITY}")
    return args


# --------------------------------------------------------------------------------------------
# The budget: epochs charged and 27-epoch values found, in the order the optimizer got them.
# --------------------------------------------------------------------------------------------
class Ledger:
    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.spent = 0
        self.evaluations = 0
        self.reached: Dict[object, int] = {}  # config or trial -> highest fidelity trained
        self.full: List[List[float]] = []  # [epochs spent once this value was known, 27-epoch value]

    def charge(self, key, fidelity: int, value: float, epochs: Optional[int] = None) -> None:
        """One result at ``fidelity``: a continued config pays its extra epochs, a new one all of them."""
        previous = self.reached.get(key, 0)
        self.spent += epochs if epochs is not None else (fidelity - previous if fidelity > previous else fidelity)
        self.reached[key] = max(previous, fidelity)
        self.evaluations += 1
        if fidelity == MAX_FIDELITY:
            self.full.append([self.spent, value])

    @property
    def exhausted(self) -> bool:
        return self.spent >= self.budget

    def record(self, wall_s: float, **extra) -> dict:
        return {"wall_s": wall_s, "epochs": self.spent, "evaluations": self.evaluations, "configs": len(self.reached),
                "full": self.full, **extra}


def regret_at(run: dict, epochs: float) -> float:
    values = [value for spent, value in run["full"] if spent <= epochs]
    return min(values) - OPTIMUM if values else NOTHING_YET


def config_key(xs: Sequence[float]) -> tuple:
    return tuple(float(x) for x in xs)


# --------------------------------------------------------------------------------------------
# In-process optimizers: hpbandster (BOHB, HyperBand, RandomSearch) and DEHB.
# --------------------------------------------------------------------------------------------
def config_space(seed: int):
    import ConfigSpace as CS

    space = CS.ConfigurationSpace(seed=seed)
    space.add([CS.UniformFloatHyperparameter(f"X_{i}", lower=0.0, upper=1.0) for i in range(DIMS)])
    return space


class _NoDispatcher:
    """Stands in for hpbandster's Pyro dispatcher (which hangs on Python 3.11): jobs are run by `run_hpbandster`."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def run(self) -> None:
        pass

    def shutdown(self, shutdown_workers: bool = False) -> None:
        pass


@contextlib.contextmanager
def _without_dispatcher():
    from hpbandster.core import master

    original = master.Dispatcher
    master.Dispatcher = _NoDispatcher
    try:
        yield
    finally:
        master.Dispatcher = original


def run_hpbandster(name: str, seed: int, budget: int) -> dict:
    """``Master.run``'s loop with one worker: next run of the oldest active iteration, else a new iteration;
    each job is evaluated at once and handed to ``Master.job_callback`` as the dispatcher would."""
    import logging

    import numpy as np
    from hpbandster.core.dispatcher import Job
    from hpbandster.optimizers import BOHB, HyperBand, RandomSearch

    cls = {"hpbandster-bohb": BOHB, "hyperband": HyperBand, "random": RandomSearch}[name]
    np.random.seed(seed)  # hpbandster's config generators draw from numpy's global generator
    quiet = logging.getLogger("search_quality.hpbandster")
    quiet.setLevel(logging.ERROR)
    with _without_dispatcher(), tempfile.TemporaryDirectory() as tmp:
        master = cls(configspace=config_space(seed), eta=ETA, min_budget=1, max_budget=MAX_FIDELITY, run_id=f"{name}-{seed}",
                     working_directory=tmp, logger=quiet)
        master.dispatcher_thread.join()
        ledger = Ledger(budget)
        start = time.perf_counter()
        while not ledger.exhausted:
            next_run = None
            for index in master.active_iterations():
                next_run = master.iterations[index].get_next_run()
                if next_run is not None:
                    break
            if next_run is None:
                master.iterations.append(master.get_next_iteration(len(master.iterations), {"result_logger": None}))
                continue
            config_id, config, fidelity = next_run
            job = Job(config_id, config=config, budget=fidelity, working_directory=tmp)
            job.time_it("submitted")
            job.time_it("started")
            value = mf_hartmann6(round(fidelity), [config[f"X_{i}"] for i in range(DIMS)])
            job.result = {"loss": value, "info": {}}
            job.time_it("finished")
            master.num_running_jobs += 1
            master.job_callback(job)
            ledger.charge(config_id, round(fidelity), value)
        return ledger.record(time.perf_counter() - start)


def run_dehb(seed: int, budget: int) -> dict:
    from dehb import DEHB

    with tempfile.TemporaryDirectory() as tmp:
        optimizer = DEHB(cs=config_space(seed), dimensions=DIMS, min_fidelity=1, max_fidelity=MAX_FIDELITY, eta=ETA,
                         n_workers=1, seed=seed, output_path=tmp, save_freq="end", log_level="ERROR")
        ledger = Ledger(budget)
        start = time.perf_counter()
        while not ledger.exhausted:
            job = optimizer.ask()
            fidelity = round(job["fidelity"])
            xs = config_key(job["config"][f"X_{i}"] for i in range(DIMS))
            value = mf_hartmann6(fidelity, xs)
            optimizer.tell(job, {"fitness": value, "cost": fidelity})
            ledger.charge(xs, fidelity, value)
        return ledger.record(time.perf_counter() - start)


# --------------------------------------------------------------------------------------------
# Ray rows: the product and plain Ray Tune, training hartmann_model.HartmannModule.
# --------------------------------------------------------------------------------------------
def _budget_callback(ledger: Ledger, generator, mismatch: List[float], events: List[list]):
    """Counts each result as one epoch (Tune resumes a promoted trial from its checkpoint); ends the search at the budget.
    Records ``[arrival time, trial, epoch]`` of each result in ``events``."""
    from ray.tune import Callback

    class BudgetCallback(Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):
            epoch = int(result["training_iteration"])
            events.append([time.perf_counter(), trial.trial_id, epoch])
            xs = config_key(trial.config[f"X_{i}"] for i in range(DIMS))
            value = mf_hartmann6(epoch, xs)
            mismatch[0] = max(mismatch[0], abs(float(result["val_loss"]) - value))
            ledger.charge(trial.trial_id, epoch, value, epochs=1)
            if ledger.exhausted and not generator.is_finished():
                generator.set_finished()

    return BudgetCallback()


def _as_generator(search_alg):
    from ray.tune.search import SearchAlgorithm, SearchGenerator

    return search_alg if isinstance(search_alg, SearchAlgorithm) else SearchGenerator(search_alg)


def run_on_ray(name: str, seed: int, budget: int, workdir: Path) -> dict:
    concurrency = int(name[-1])
    ledger, mismatch, events = Ledger(budget), [0.0], []
    folder = workdir / f"{name}_seed{seed}"
    if name.startswith("product"):
        search = _product_search(seed, budget, concurrency, folder)
    else:
        search = _plain_search(seed, budget, concurrency, folder)
    start = time.perf_counter()
    search(lambda generator: _budget_callback(ledger, generator, mismatch, events))
    if not ledger.exhausted:  # Tune returns normally after Ctrl+C, and when trials fail
        raise SystemExit(f"error: {name} seed {seed} ended after {ledger.spent} of {budget} epochs (interrupted, or its "
                         "trials failed: see Tune's output above); not recorded, the results file keeps the runs before it")
    return ledger.record(time.perf_counter() - start, trials=len(ledger.reached), max_abs_reported_diff=mismatch[0],
                         events=[[round(t - start, 4), trial, epoch] for t, trial, epoch in events])


def timing(run: dict) -> dict:
    """A Ray run's wall time split by its results' arrival times (meaningful at concurrency 1): ``epoch_s``, the median
    time between a trial's consecutive epochs; ``switch_s``, the median time from one trial's result to another trial's
    (stopping or pausing one, starting or resuming the next from its checkpoint, and its epoch) less ``epoch_s``;
    ``switches``; ``first_s``, start to the first result; ``tail_s``, the last result to the end."""
    events = run["events"]
    epochs = [b[0] - a[0] for a, b in zip(events, events[1:], strict=False) if a[1] == b[1] and b[2] == a[2] + 1]
    changes = [b[0] - a[0] for a, b in zip(events, events[1:], strict=False) if a[1] != b[1]]
    epoch_s = _quartiles(epochs)[0] if epochs else float("nan")
    return {"epoch_s": epoch_s, "switch_s": (_quartiles(changes)[0] - epoch_s) if changes else float("nan"),
            "switches": len(changes), "epochs": len(events), "first_s": events[0][0], "tail_s": run["wall_s"] - events[-1][0]}


def modelled_wall(shape: dict, costs: dict) -> float:
    """The wall time of a run with ``shape``'s switches and epochs at ``costs``' per-epoch and per-switch times."""
    return (costs["first_s"] + shape["switches"] * (costs["switch_s"] + costs["epoch_s"])
            + (shape["epochs"] - 1 - shape["switches"]) * costs["epoch_s"] + costs["tail_s"])


def _product_search(seed: int, budget: int, concurrency: int, folder: Path):
    import hartmann_model
    from lightning_bohb import BOHBStrategy, ConfigDrivenOptimizer, OptimizationConfig

    optimizer = ConfigDrivenOptimizer(
        hartmann_model.BASE_CONFIG,
        hartmann_model.HartmannSpace(),
        BOHBStrategy(reduction_factor=ETA),
        OptimizationConfig(max_epochs=MAX_FIDELITY, num_samples=budget, max_concurrent_trials=concurrency, seed=seed,
                           experiment_dir=str(folder), experiment_name="session"),
    )

    def search(make_callback) -> None:
        search_alg, scheduler = optimizer.build_search()
        generator = _as_generator(search_alg)
        optimizer.run(search=(generator, scheduler), callbacks=[make_callback(generator)], verbose=0, write_best=False)

    return search


def _plain_search(seed: int, budget: int, concurrency: int, folder: Path):
    from ray import tune
    from ray.tune.schedulers import HyperBandForBOHB
    from ray.tune.search.bohb import TuneBOHB

    import hartmann_model

    def search(make_callback) -> None:
        generator = _as_generator(TuneBOHB(seed=seed, max_concurrent=concurrency))
        tuner = tune.Tuner(
            tune.with_resources(tune.with_parameters(hartmann_model.plain_trainable, max_epochs=MAX_FIDELITY), {"cpu": 1}),
            param_space=hartmann_model.search_space(),
            tune_config=tune.TuneConfig(
                metric="val_loss",
                mode="min",
                search_alg=generator,
                scheduler=HyperBandForBOHB(time_attr="training_iteration", max_t=MAX_FIDELITY, reduction_factor=ETA),
                num_samples=budget,
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                name="tune",
                storage_path=str(folder),
                callbacks=[make_callback(generator)],
                checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
                verbose=0,
            ),
        )
        tuner.fit()

    return search


def start_ray(num_cpus: int) -> None:
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(BENCH), os.environ.get("PYTHONPATH", "")) if p)  # trials import the module
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")  # a warning per checkpoint at 1 epoch/s
    os.environ.pop("RAY_ADDRESS", None)  # never join someone else's cluster
    import ray

    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)


# --------------------------------------------------------------------------------------------
# Results: cache, tables, test, plot.
# --------------------------------------------------------------------------------------------
def settings(budget: int) -> dict:
    from mf_hartmann import BIAS, NOISE, NOISE_SEED

    return {"function": "MF-Hartmann-6, mf-prior-bench 1.10 mfh6 preset", "bias": BIAS, "noise": NOISE, "noise_seed": NOISE_SEED,
            "max_epochs": MAX_FIDELITY, "eta": ETA, "budget": budget, "optimum": OPTIMUM}


def load_results(path: Path, budget: Optional[int]) -> dict:
    if not path.exists():
        return {"settings": settings(budget or 1000), "optimizers": {}}
    try:
        results = json.loads(path.read_text())
        cached = results["settings"]
        results["optimizers"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise SystemExit(f"error: {path} is not a results file of this bench ({err}); name another --results or move it") from None
    if budget is not None and cached != settings(budget):
        raise SystemExit(f"error: {path} holds runs with other settings ({cached}); run with the same --budget or another --results")
    return results


def save_results(results: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results))
    os.replace(tmp, path)


def _quartiles(values):
    import numpy as np

    return tuple(float(q) for q in np.percentile(values, [50, 25, 75]))


def _runs(results: dict, name: str) -> List[dict]:
    return [run for _, run in sorted(results["optimizers"].get(name, {}).items(), key=lambda item: int(item[0]))]


def report(results: dict, plot_path: Path) -> None:
    budget = results["settings"]["budget"]
    names = [n for n in OPTIMIZERS if results["optimizers"].get(n)]
    headers = ["optimizer", "seeds", *(f"regret @{int(f * 100)}% median [IQR]" for f in FRACTIONS), "wall s/run"]
    rows = []
    for name in names:
        runs = _runs(results, name)
        cells = []
        for fraction in FRACTIONS:
            med, q1, q3 = _quartiles([regret_at(run, fraction * budget) for run in runs])
            cells.append(f"{med:.3f} [{q1:.3f}, {q3:.3f}]")
        rows.append([LABELS[name], len(runs), *cells, _quartiles([run["wall_s"] for run in runs])[0]])
    print(f"\nRegret on MF-Hartmann-6 (mfh6), budget {budget} epochs, max 27 epochs, eta 3 (median [25th, 75th percentile] over seeds)")
    print_table(headers, rows)
    _print_tests(results, names, budget)
    _print_cost(results)
    if names:
        _plot(results, names, plot_path)
        print(f"\nplot: {plot_path}")


def _print_tests(results: dict, names: List[str], budget: int) -> None:
    from scipy.stats import mannwhitneyu

    candidates = [n for n in names if n.startswith(("product", "raytune", "dehb"))]
    if REFERENCE not in names or not candidates:
        return
    final = {n: [regret_at(run, budget) for run in _runs(results, n)] for n in names}
    reference = _quartiles(final[REFERENCE])[0]
    print(f"\nMann-Whitney U (two-sided) of the regret at 100 % against {LABELS[REFERENCE]} (median {reference:.3f})"
          + (" and against HyperBand" if "hyperband" in names else ""))
    rows = []
    for name in candidates:
        median = _quartiles(final[name])[0]
        p_ref = mannwhitneyu(final[name], final[REFERENCE], alternative="two-sided").pvalue
        p_hb = mannwhitneyu(final[name], final["hyperband"], alternative="two-sided").pvalue if "hyperband" in names else None
        rows.append([LABELS[name], len(final[name]), median, f"{median / reference:.2f}x", p_ref, p_hb])
    print_table(["optimizer", "seeds", "median", "vs reference", "p vs reference", "p vs HyperBand"], rows)
    if "hyperband" in names:
        hyperband = _quartiles(final["hyperband"])[0]
        for name in (n for n in candidates if n.startswith("product")):
            median = _quartiles(final[name])[0]
            p_ref = mannwhitneyu(final[name], final[REFERENCE], alternative="two-sided").pvalue
            met = median <= 1.1 * reference and p_ref > 0.05 and median < hyperband
            print(f"Goal ({name}: median within 10 % of the reference, p > 0.05, below HyperBand's {hyperband:.3f}): "
                  + ("met" if met else "NOT met") + ("" if len(final[name]) >= 10 else f" (only {len(final[name])} seeds)"))


def _print_cost(results: dict) -> None:
    rows = []
    costs: Dict[str, dict] = {}
    for name in ON_RAY:
        runs = _runs(results, name)
        if not runs:
            continue
        wall = [run["wall_s"] for run in runs]
        trials = [run["trials"] for run in runs]
        epochs = [run["epochs"] for run in runs]
        per_trial = _quartiles([w / t for w, t in zip(wall, trials, strict=True)])[0]
        per_epoch = _quartiles([w / e for w, e in zip(wall, epochs, strict=True)])[0]
        medians = [_quartiles(values)[0] for values in (trials, epochs, wall)]
        split: list = [None] * 5
        if name.endswith("c1"):  # with two trials at once, arrival gaps are no per-trial costs
            splits = [timing(run) for run in runs]
            costs[name] = {key: _quartiles([one[key] for one in splits])[0] for key in splits[0]}
            split = [costs[name][key] for key in ("switches", "epoch_s", "switch_s", "first_s", "tail_s")]
        rows.append([LABELS[name], len(runs), *medians, per_trial, per_epoch, *split])
    if not rows:
        return
    print("\nCost of a run on one shared local Ray (medians over seeds; epochs = all trained, past the budget included;"
          "\n'switch' = one trial's result to another trial's, less an epoch: stopping or pausing one, starting or resuming the next)")
    print_table(["optimizer", "seeds", "trials", "epochs", "wall s", "s/trial", "s/epoch", "switches", "epoch s", "switch s",
                 "first result s", "tail s"], rows)
    product, plain = "product-bohb-c1", "raytune-bohb-c1"
    if product in costs and plain in costs:
        mine, theirs = _quartiles([run["wall_s"] for run in _runs(results, product)])[0], modelled_wall(costs[product], costs[plain])
        ours, plains = costs[product], costs[plain]
        print(f"concurrency 1: the product's search ({ours['switches']:.0f} switches, {ours['epochs']:.0f} epochs) at "
              f"plain Ray Tune's per-epoch and per-switch times: {theirs:.0f} s against the product's {mine:.0f} s: the product's "
              f"share {(mine - theirs) / mine:.0%}; per switch {ours['switch_s']:.2f} s against {plains['switch_s']:.2f} s, "
              f"per epoch {ours['epoch_s']:.3f} s against {plains['epoch_s']:.3f} s")


def _plot(results: dict, names: List[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.ticker import FormatStrFormatter

    budget = results["settings"]["budget"]
    grid = np.arange(1, budget + 1)
    fig, ax = plt.subplots(figsize=(8, 5))
    for name in names:
        curves = np.array([[regret_at(run, x) for x in grid] for run in _runs(results, name)])
        median, q1, q3 = (np.percentile(curves, q, axis=0) for q in (50, 25, 75))
        (line,) = ax.plot(grid, median, label=f"{LABELS[name]} ({len(curves)} seeds)")
        ax.fill_between(grid, q1, q3, color=line.get_color(), alpha=0.15)
    ax.set_yscale("log")
    for axis in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):
        axis(FormatStrFormatter("%.1f"))
    ax.set_xlabel("epochs spent (promotions charged their extra epochs)")
    ax.set_ylabel("regret of the best 27-epoch value (median, IQR shaded)")
    ax.set_title("MF-Hartmann-6 (mf-prior-bench mfh6), 27 epochs, eta 3")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------------------------
def main(argv=None) -> None:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)  # pandas, through hpbandster's and DEHB's imports
    path = Path(args.results)
    plot_path = path.with_suffix(".png")
    if args.report:
        report(load_results(path, None), plot_path)
        return
    results = load_results(path, args.budget)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="search_quality_"))
    print_header("Search quality on MF-Hartmann-6 (bench/search_quality.py)", workdir, bool(args.workdir))
    check = check_against_mfpbench()
    results["check"] = check
    if check["ok"] is None:
        print(f"check against mf-prior-bench skipped: {check['reason']}")
    else:
        print(f"check against mf-prior-bench's MFHartmann6 (n_fidelities=27, bias/noise of mfh6, noise seeds 1337 and 7): "
              f"{check['compared']} values, max |diff| {check['max_abs_diff']:.1e}, preset {check['preset']}, optimum {check['optimum']}: "
              + ("equal" if check["ok"] else "DIFFERENT"))
        if not check["ok"]:
            raise SystemExit("error: bench/mf_hartmann.py does not match mf-prior-bench's MFHartmann6; fix it before measuring")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    ray_names = [n for n in args.names if n in ON_RAY]
    try:
        for name in (n for n in args.names if n in IN_PROCESS):
            for seed in seeds:
                run = run_dehb(seed, args.budget) if name == "dehb" else run_hpbandster(name, seed, args.budget)
                results["optimizers"].setdefault(name, {})[str(seed)] = run
            save_results(results, path)
            print(f"{name}: {args.seeds} seeds done")
        if ray_names:
            start_ray(args.num_cpus)
            for index, seed in enumerate(seeds):
                for name in ray_names if index % 2 == 0 else ray_names[::-1]:  # alternate the order: a changing load hits all alike
                    run = run_on_ray(name, seed, args.budget, workdir)
                    results["optimizers"].setdefault(name, {})[str(seed)] = run
                    save_results(results, path)
                    print(f"{name} seed {seed}: {run['trials']} trials, {run['epochs']} epochs, {run['wall_s']:.1f} s, "
                          f"regret {fmt(regret_at(run, args.budget), 3)}, "
                          f"max |reported - exact| {run['max_abs_reported_diff']:.1e}", flush=True)
    finally:
        if ray_names:
            import ray

            ray.shutdown()
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"results: {path}")
    report(results, plot_path)


if __name__ == "__main__":
    main()
