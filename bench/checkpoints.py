#!/usr/bin/env python
"""Big checkpoints: time, size and memory of one trial checkpoint, and the disk a session keeps.

Part 1 (``--size-gb``, default 1): a Lightning model whose parameters plus Adam state weigh about
``--size-gb`` GB is trained for two steps on the CPU; at the end of its epoch each variant writes a
checkpoint ``--repeats`` times, timed from the start of the save until the checkpoint is in the
session folder (under ``--workdir``, one disk for every row):

  torch.save        ``trainer.save_checkpoint(path)`` (Lightning's ``torch.save``) to that disk, no fsync
  torch.save+fsync  the same, then ``os.fsync`` of the file: the least a durable write costs
  raytune           what plain Ray Tune does: save into a temporary folder, then Ray's upload
                    (``ray.train._internal.storage._pyarrow_fs_copy_files``) through Tune's default
                    storage filesystem (pyarrow's local one, no fsync)
  lt-fsync-chunk    LightningTune before issue 15: saved in a temporary folder, uploaded through the
                    session's atomic filesystem, which fsynced every 64 MiB chunk
  lt-tmpdir         the same with one fsync per file (what a multi-process trial still does)
  lt                LightningTune: `save_checkpoint_folder` into the trial's staging folder inside the
                    session, and Ray's upload from the session's filesystem to itself, which hard-links
                    the file into the checkpoint folder after one fsync (one write of the data)
  lt-zstd           ``lt`` with ``checkpoint_compression="zstd"``

All variants run in one child process on the same trained model, in rounds (each variant once per
round, the order reversed every other round) so that the machine's changing load hits all alike;
"peak MiB" is that process's peak RSS while the variant saves (the model's ~size included).

Part 2 (``--retention``): the same seeded ASHA session (digits model, 12 trials, 6 epochs, hidden
size 512) with and without deletion of the early-stopped trials' checkpoints; the disk each session
keeps, and its wall time.

    python bench/checkpoints.py                   # about 1-2 minutes on 2 idle cores, 1 GB
    python bench/checkpoints.py --size-gb 0.25 --retention
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

from _common import REPO, TreeMemory, bench_env, fmt, median, print_header, print_table

VARIANTS = ("torch.save", "torch.save+fsync", "raytune", "lt-fsync-chunk", "lt-tmpdir", "lt", "lt-zstd")


def disk_bytes(folder: Path) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, names in os.walk(folder) for f in names)


# ---------------------------------------------------------------- part 1: one checkpoint, in a child process
def _big_module(size_gb: float):
    import lightning.pytorch as pl
    import torch

    width = 2048
    # parameters + Adam's two moments: 12 bytes per parameter
    layers = max(1, round(size_gb * 1e9 / 12 / (width * width)))

    class Big(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(*[torch.nn.Linear(width, width) for _ in range(layers)])

        def training_step(self, batch, batch_idx):
            return self.net(batch[0]).pow(2).mean()

        def train_dataloader(self):
            data = torch.utils.data.TensorDataset(torch.randn(4, width))
            return torch.utils.data.DataLoader(data, batch_size=2)

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-4)

    return Big()


def _save(variant: str, trainer, target: Path) -> None:
    from ray.train._internal.storage import _pyarrow_fs_copy_files

    if variant.startswith("torch.save"):
        target.mkdir(parents=True)
        path = target / "checkpoint.ckpt"
        trainer.save_checkpoint(path)
        if variant.endswith("fsync"):
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        return
    from lightning_bohb._ray.atomic_fs import atomic_storage_filesystem
    from lightning_bohb.callbacks.tune_report_callback import save_checkpoint_folder
    from lightning_bohb.utils.files import STAGING_FOLDER, make_private_dir

    if variant in ("lt", "lt-zstd"):  # what checkpoint_staging + tune.report do in a single-process trial
        session = atomic_storage_filesystem()
        staging = str(make_private_dir(target.parent / STAGING_FOLDER))
        try:
            save_checkpoint_folder(trainer, staging, "zstd" if variant == "lt-zstd" else None)
            session.create_dir(str(target))  # as persist_current_checkpoint does
            _pyarrow_fs_copy_files(staging, str(target), source_filesystem=session, destination_filesystem=session)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return
    with tempfile.TemporaryDirectory(prefix="bench_ckpt_") as tmp:
        if variant == "raytune":
            import pyarrow.fs

            trainer.save_checkpoint(os.path.join(tmp, "checkpoint.ckpt"))
            filesystem = pyarrow.fs.LocalFileSystem()
        else:  # lt-tmpdir, lt-fsync-chunk: a temporary folder, copied into the session
            save_checkpoint_folder(trainer, tmp, None)
            filesystem = atomic_storage_filesystem()
        filesystem.create_dir(str(target))  # as persist_current_checkpoint does
        _pyarrow_fs_copy_files(tmp, str(target), destination_filesystem=filesystem)


def child(args) -> None:
    import lightning.pytorch as pl

    from lightning_bohb.utils import files

    out = Path(args.dir)
    variants = args.variant.split(",")
    records = {v: {"variant": v, "seconds": [], "bytes": None, "peak_mib": 0.0} for v in variants}
    normal_unit = files.SYNC_UNIT

    class Measure(pl.Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            parameter_bytes = sum(p.numel() * p.element_size() for p in pl_module.parameters())
            _save("torch.save", trainer, out / "warm-up")  # the first save pays one-time costs: untimed
            shutil.rmtree(out / "warm-up")
            for index in range(args.repeats):  # rounds: every variant once per round, so load drifts hit all alike
                for variant in variants if index % 2 == 0 else variants[::-1]:
                    # lt-fsync-chunk: every write is "the last chunk", an fsync per write as before issue 15
                    files.SYNC_UNIT = 1 << 62 if variant == "lt-fsync-chunk" else normal_unit
                    target = out / f"checkpoint_{index:06d}"
                    with TreeMemory(os.getpid(), interval=0.05) as memory:
                        start = time.perf_counter()
                        _save(variant, trainer, target)
                        records[variant]["seconds"].append(time.perf_counter() - start)
                    record = records[variant]
                    record.update(bytes=disk_bytes(target), parameter_bytes=parameter_bytes)
                    record["peak_mib"] = max(record["peak_mib"], memory.peak_mib)
                    shutil.rmtree(target)  # one checkpoint on disk at a time

    trainer = pl.Trainer(
        max_epochs=1, limit_train_batches=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, callbacks=[Measure()], accelerator="cpu",
    )
    trainer.fit(_big_module(args.size_gb))
    Path(args.json_out).write_text(json.dumps(list(records.values())))


# ---------------------------------------------------------------- part 2: retention, in a child process
def retention_child(args) -> None:
    from ray import tune

    import lightning_bohb.core.retention as retention
    from lightning_bohb import ASHAStrategy, ConfigDrivenOptimizer, OptimizationConfig, SearchSpace, TuneReflowCLI

    if args.variant == "keep-all":
        retention.StoppedTrialCheckpoints.on_step_end = lambda self, *a, **k: None  # type: ignore[method-assign]

    class Space(SearchSpace):
        def get_search_space(self):
            return {"lr": tune.loguniform(1e-4, 3e-2)}

        def get_metric_config(self):
            return {"metric": "val_loss", "mode": "min"}

    config = REPO / "examples" / "config.yaml"
    text = config.read_text().replace("hidden_size: 64", "hidden_size: 512")
    base = Path(args.dir) / "config.yaml"
    base.parent.mkdir(parents=True, exist_ok=True)
    base.write_text(text)
    optimizer = ConfigDrivenOptimizer(
        str(base), Space(), ASHAStrategy(grace_period=1, reduction_factor=2, seed=3),
        OptimizationConfig(max_epochs=6, num_samples=12, max_concurrent_trials=2, seed=0),
    )
    start = time.perf_counter()
    cli = TuneReflowCLI("bench", experiment_dir=args.dir, verbose=False)
    results = cli.run(optimizer)
    wall = time.perf_counter() - start
    tune_dir = Path(cli.session_dir) / "tune"
    checkpoint_bytes = sum(disk_bytes(p) for p in tune_dir.glob("*/checkpoint_*"))
    record = {
        "variant": args.variant, "wall": wall, "session_bytes": disk_bytes(Path(cli.session_dir)),
        "checkpoint_bytes": checkpoint_bytes, "trials": len(results),
        "stopped_early": sum(1 for r in results if r.metrics["epoch"] + 1 < 6),
    }
    Path(args.json_out).write_text(json.dumps(record))


# ---------------------------------------------------------------- parent
def run_child(kind: str, variant: str, args, root: Path) -> dict:
    name = variant if kind == "retention" else "all"
    json_out = root / f"{kind}-{name}.json"
    folder = root / f"{kind}-{name}"
    command = [sys.executable, __file__, f"--{kind}-child", "--variant", variant, "--dir", str(folder),
               "--json-out", str(json_out), "--size-gb", str(args.size_gb), "--repeats", str(args.repeats)]
    process = subprocess.Popen(command, env=bench_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with TreeMemory(process.pid) as memory:
        output, _ = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"{kind} {variant} failed:\n{output[-4000:]}")
    record = json.loads(json_out.read_text())
    if isinstance(record, dict):
        record["peak_mib"] = memory.peak_mib
    shutil.rmtree(folder, ignore_errors=True)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-gb", type=float, default=1.0, help="parameters + optimizer state, GB (default 1)")
    parser.add_argument("--repeats", type=int, default=3, help="checkpoints timed per variant (median shown)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of " + ", ".join(VARIANTS))
    parser.add_argument("--retention", action="store_true", help="also run part 2 (two small ASHA sessions)")
    parser.add_argument("--workdir", help="keep files here (default: a temporary folder beside the repository)")
    parser.add_argument("--json", help="write the raw measurements here")
    parser.add_argument("--checkpoint-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--retention-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    parser.add_argument("--json-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.checkpoint_child:
        return child(args)
    if args.retention_child:
        return retention_child(args)
    if args.size_gb <= 0:
        parser.error(f"The value of `--size-gb` is {args.size_gb}, but must be `--size-gb > 0`.")
    if args.repeats < 1:
        parser.error(f"The value of `--repeats` is {args.repeats}, but must be `--repeats >= 1`.")
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"Unknown variant(s) {unknown}; choose from {list(VARIANTS)}.")

    root = Path(args.workdir or tempfile.mkdtemp(prefix="bench_checkpoints_", dir=REPO.parent)).resolve()
    root.mkdir(parents=True, exist_ok=True)
    print_header(f"Checkpoint of ~{args.size_gb:g} GB (parameters + Adam state), {args.repeats} per variant", root,
                 bool(args.workdir))
    records = {"checkpoint": [], "retention": []}
    try:
        records["checkpoint"] = run_child("checkpoint", ",".join(variants), args, root)
        base = {r["variant"]: median(r["seconds"]) for r in records["checkpoint"]}
        reference = base.get("torch.save")
        rows = []
        for r in records["checkpoint"]:
            seconds = median(r["seconds"])
            rows.append([r["variant"], seconds, seconds / reference if reference else None,
                         r["bytes"] / 2**20, r["bytes"] / (r["parameter_bytes"] * 3), r["bytes"] / 2**20 / seconds, r["peak_mib"]])
        print_table(["variant", "s/checkpoint", "x torch.save", "MiB on disk", "size/(params*3)", "MiB/s", "peak MiB"], rows)
        if "lt" in base and reference:
            print(f"Goal lt <= 1.2x torch.save: {fmt(base['lt'] / reference)}x "
                  f"({'met' if base['lt'] / reference <= 1.2 else 'not met'}); "
                  f"torch.save+fsync is {fmt(base.get('torch.save+fsync', float('nan')) / reference)}x")
        if args.retention:
            print(f"\nRetention: seeded ASHA session, 12 trials x 6 epochs, hidden size 512 ({load_line()})")
            for variant in ("keep-all", "retention"):
                records["retention"].append(run_child("retention", variant, args, root))
            print_table(
                ["variant", "wall s", "trials", "stopped early", "checkpoints MiB", "session MiB", "peak MiB"],
                [[r["variant"], r["wall"], r["trials"], r["stopped_early"], r["checkpoint_bytes"] / 2**20,
                  r["session_bytes"] / 2**20, r["peak_mib"]] for r in records["retention"]],
            )
    finally:
        if args.json:
            Path(args.json).write_text(json.dumps(records, indent=1))
        if not args.workdir:
            shutil.rmtree(root, ignore_errors=True)
    print(f"# at the end: {load_line()}")


def load_line() -> str:
    from _common import load_average

    return load_average()


if __name__ == "__main__":
    main()
