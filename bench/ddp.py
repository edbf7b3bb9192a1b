#!/usr/bin/env python
"""What a trial's extra DDP ranks cost: one trial on 1 CPU rank against the same trial on 2 CPU ranks.

Both variants run the example's digits MLP (``examples/config.yaml``, batch size 64 per rank) for
``--epochs`` epochs in one seeded `ConfigDrivenOptimizer` search of one trial, each in its own fresh
Python process with its own local Ray (2 CPUs). The 2-rank trial reserves a placement group of 2
one-CPU bundles; its rank 1 is a Ray actor that builds the same LightningCLI config (gloo backend).

Per epoch: Tune's ``time_this_iter_s`` of every epoch after the first (median); start: the first
epoch's, which includes building the trial (and, with 2 ranks, starting rank 1's actor, importing
torch there and joining the process group). Variants alternate ``--repeats`` times; medians shown.

    python bench/ddp.py                    # about 2 minutes on 2 idle cores
    python bench/ddp.py --epochs 6 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import EXAMPLES, bench_env, fmt, median, print_table  # noqa: E402


def child(ranks: int, epochs: int, workdir: str) -> None:
    import ray
    import yaml
    from ray import tune

    from lightning_bohb import ConfigDrivenOptimizer, OptimizationConfig, SearchSpace

    class Space(SearchSpace):
        def get_search_space(self):
            return {"lr": tune.choice([3e-3])}

        def get_metric_config(self):
            return {"metric": "val_loss", "mode": "min"}

    config = yaml.safe_load((EXAMPLES / "config.yaml").read_text())
    config["trainer"].update(accelerator="cpu", devices=ranks, strategy="ddp" if ranks > 1 else "auto")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    optimization = OptimizationConfig(max_epochs=epochs, num_samples=1, seed=0, cpus_per_trial=ranks)
    started = time.monotonic()
    results = ConfigDrivenOptimizer(config, Space(), optimization_config=optimization).run(output_dir=workdir, verbose=0)
    search = time.monotonic() - started
    (result,) = results
    history = result.metrics_dataframe
    print(json.dumps({"iters": history["time_this_iter_s"].tolist(), "search": search, "val_loss": float(result.metrics["val_loss"])}))
    ray.shutdown()


def run(ranks: int, epochs: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench_ddp_") as workdir:
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(ranks), "--epochs", str(epochs), "--workdir", workdir],
            env=bench_env(),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.epochs, args.workdir)
        return
    runs: dict = {1: [], 2: []}
    for repeat in range(args.repeats):
        for ranks in (1, 2) if repeat % 2 == 0 else (2, 1):
            runs[ranks].append(run(ranks, args.epochs))
    rows = []
    base = median(median(r["iters"][1:]) for r in runs[1])
    for ranks, label in ((1, "1 rank (devices: 1)"), (2, "2 ranks (devices: 2, strategy: ddp)")):
        epoch = median(median(r["iters"][1:]) for r in runs[ranks])
        first = median(r["iters"][0] for r in runs[ranks])
        search = median(r["search"] for r in runs[ranks])
        rows.append([label, fmt(epoch, 3), fmt(epoch / base), fmt(first), fmt(search)])
    print(f"{args.epochs} epochs, {args.repeats} run(s) each, medians")
    print_table(["trial", "s per epoch", "vs 1 rank", "first epoch s (incl. start)", "search s"], rows)


if __name__ == "__main__":
    main()
