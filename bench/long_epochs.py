"""Pause with a deadline shorter than an epoch (``bench/pause_resume.py --long-epochs``, issue 13).

Both sides run 2 trials side by side of ``LongEpochRegressor``: an epoch of ``--steps`` training steps
that take ``--step-seconds`` each (60 s by default), every step's loss recorded. Once both trials
are ``--into`` seconds into their second epoch, the driver gets SIGTERM:

  LightningTune   a session with ``grace_period = --deadline``: each trial checkpoints at its next step
                  (the epoch end is too far away), the session pauses; resumed to the end.
  plain Ray Tune  a ``Tuner`` whose function trainable fits the same model and reports a checkpoint at
                  every epoch end, restarting from ``tune.get_checkpoint()``; SIGTERM ends it (Tune
                  saves nothing on SIGTERM; its last experiment snapshot stands) and
                  ``Tuner.restore(..., resume_unfinished=True)`` resumes it to the end.

Measured: seconds from SIGTERM to every running trial's new checkpoint on disk (LightningTune) and to
the driver's exit; steps trained twice after the resume (a step whose ``(epoch, batch)`` a trial
trained more than once: the work lost).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

import lightning.pytorch as pl
import torch

BENCH = Path(__file__).resolve().parent
SAMPLES = 40
BATCH = 2  # 20 steps an epoch


class LongEpochRegressor(pl.LightningModule):
    """A linear regression whose training steps last ``step_seconds``; each step's loss goes to a jsonl."""

    def __init__(self, record_dir: str = "", step_seconds: float = 3.0, lr: float = 0.01):
        super().__init__()
        self.layer = torch.nn.Linear(8, 1)
        self.record_dir, self.step_seconds, self.lr = record_dir, step_seconds, lr

    def training_step(self, batch, batch_idx):
        started = time.monotonic()
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x).squeeze(-1), y)
        if self.record_dir:
            from ray import tune

            with open(os.path.join(self.record_dir, f"{tune.get_context().get_trial_id()}.jsonl"), "a") as handle:
                handle.write(json.dumps({"epoch": self.current_epoch, "batch": batch_idx, "loss": loss.item(), "t": time.time()}) + "\n")
        time.sleep(max(0.0, self.step_seconds - (time.monotonic() - started)))
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.layer(x).squeeze(-1), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)


class LongEpochData(pl.LightningDataModule):
    def setup(self, stage=None):
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(SAMPLES + 8, 8, generator=generator)
        data = torch.utils.data.TensorDataset(x, x.sum(dim=1))
        self.train_set = torch.utils.data.Subset(data, range(SAMPLES))
        self.val_set = torch.utils.data.Subset(data, range(SAMPLES, SAMPLES + 8))

    def train_dataloader(self):
        return torch.utils.data.DataLoader(self.train_set, batch_size=BATCH, shuffle=True)

    def val_dataloader(self):
        return torch.utils.data.DataLoader(self.val_set, batch_size=8)


def _config(record_dir: Path, step_seconds: float) -> Dict[str, Any]:
    return {
        "seed_everything": 0,
        "trainer": {"accelerator": "cpu", "devices": 1, "num_sanity_val_steps": 0},
        "model": {
            "class_path": "long_epochs.LongEpochRegressor",
            "init_args": {"record_dir": str(record_dir), "step_seconds": step_seconds},
        },
        "data": {"class_path": "long_epochs.LongEpochData"},
    }


# -- the children: one search each, resumed when the folder already holds one ----------------------
def child_lt(work: Path, step_seconds: float, deadline: float, max_epochs: int) -> int:
    import yaml

    from lightning_bohb import ConfigDrivenOptimizer, OptimizationConfig, RandomStrategy, SearchSpace, SessionPaused, TuneReflowCLI

    class Space(SearchSpace):
        def get_search_space(self):
            from ray import tune

            return {"lr": tune.loguniform(1e-3, 3e-2)}

        def get_metric_config(self):
            return {"metric": "val_loss", "mode": "min"}

    sessions = sorted((work / "experiments").glob("*/session_*"))
    try:
        if sessions:
            TuneReflowCLI.resume(sessions[0]).run()
        else:
            config = work / "config.yaml"
            config.write_text(yaml.safe_dump(_config(work / "records", step_seconds)))
            settings = OptimizationConfig(max_epochs=max_epochs, num_samples=2, max_concurrent_trials=2, seed=1)
            cli = TuneReflowCLI("long", experiment_dir=work / "experiments", enable_pause=False, verbose=False, grace_period=deadline)
            cli.run(ConfigDrivenOptimizer(config, Space(), RandomStrategy(seed=1), settings))
    except SessionPaused:
        return 3
    return 0


def child_plain(work: Path, step_seconds: float, max_epochs: int) -> int:
    import tempfile

    from ray import tune

    def trainable(config):
        pl.seed_everything(0)

        class Report(pl.Callback):
            def on_train_epoch_end(self, trainer, pl_module):
                with tempfile.TemporaryDirectory() as tmp:
                    trainer.save_checkpoint(os.path.join(tmp, "checkpoint.ckpt"))
                    tune.report({"val_loss": float(trainer.callback_metrics["val_loss"])}, checkpoint=tune.Checkpoint.from_directory(tmp))

        model = LongEpochRegressor(str(work / "records"), step_seconds, config["lr"])
        trainer = pl.Trainer(max_epochs=max_epochs, callbacks=[Report()], logger=False, enable_progress_bar=False,
                             enable_model_summary=False, enable_checkpointing=False, num_sanity_val_steps=0)
        checkpoint = tune.get_checkpoint()
        if checkpoint is None:
            trainer.fit(model, LongEpochData())
            return
        with checkpoint.as_directory() as folder:
            trainer.fit(model, LongEpochData(), ckpt_path=os.path.join(folder, "checkpoint.ckpt"), weights_only=False)

    path = str(work / "plain")
    if tune.Tuner.can_restore(path):
        tune.Tuner.restore(path, trainable, resume_unfinished=True).fit()
        return 0
    space = {"lr": tune.loguniform(1e-3, 3e-2)}
    tune.Tuner(
        trainable, param_space=space,
        tune_config=tune.TuneConfig(metric="val_loss", mode="min", num_samples=2, max_concurrent_trials=2,
                                    search_alg=tune.search.BasicVariantGenerator(random_state=1)),
        run_config=tune.RunConfig(name="plain", storage_path=str(work), verbose=0),
    ).fit()
    return 0


# -- the measuring side ---------------------------------------------------------------------------
def _steps(record_dir: Path) -> Dict[str, List[dict]]:
    found = {}
    for path in record_dir.glob("*.jsonl"):
        found[path.stem] = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return found


def _checkpoints(work: Path) -> Dict[str, int]:
    counts: Dict[str, int] = {}
    for folder in work.glob("**/train_trial_*/checkpoint_*"):
        counts[folder.parent.name] = counts.get(folder.parent.name, 0) + 1
    return counts


def run_case(side: str, work: Path, args, env: Dict[str, str]) -> Dict[str, Any]:
    (work / "records").mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, str(Path(__file__)), "--child", side, str(work)]
    argv += [str(args.step_seconds), str(args.deadline), str(args.max_epochs)]
    log = open(work / "first.log", "w")
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    epoch_s = args.step_seconds * SAMPLES / BATCH
    wait_until = time.monotonic() + args.timeout

    def both_into_epoch_1():
        steps = _steps(work / "records")
        return len(steps) == 2 and all(
            any(s["epoch"] == 1 for s in rows) and time.time() - min(s["t"] for s in rows if s["epoch"] == 1) >= args.into
            for rows in steps.values()
        )

    while not both_into_epoch_1():
        if proc.poll() is not None or time.monotonic() > wait_until:
            raise RuntimeError(f"{side}: the trials never reached epoch 1 (see {work / 'first.log'})")
        time.sleep(0.05)
    before = _checkpoints(work)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    saved_s = None
    while proc.poll() is None:
        now = _checkpoints(work)
        if saved_s is None and len(now) == 2 and all(now[t] > before.get(t, 0) for t in now):
            saved_s = time.monotonic() - sent
        time.sleep(0.02)
    exit_s = time.monotonic() - sent
    now = _checkpoints(work)
    if saved_s is None and len(now) == 2 and all(now[t] > before.get(t, 0) for t in now):
        saved_s = exit_s
    at_signal = {trial: len(rows) for trial, rows in _steps(work / "records").items()}
    log.close()
    with open(work / "resume.log", "w") as log:
        code = subprocess.run(argv, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=args.timeout).returncode
    if code != 0:
        raise RuntimeError(f"{side}: the resumed search failed ({code}, see {work / 'resume.log'})")
    twice = 0
    for rows in _steps(work / "records").values():
        keys = [(s["epoch"], s["batch"]) for s in rows]
        twice += len(keys) - len(set(keys))
    return {"side": side, "epoch_s": epoch_s, "sigterm_to_checkpoints_s": saved_s, "sigterm_to_exit_s": exit_s,
            "steps_trained_twice": twice, "steps_at_signal": at_signal}


def main_case(args, root: Path, env: Dict[str, str]) -> List[Dict[str, Any]]:
    results = []
    for side in args.side_list:
        result = run_case(side, root / f"long_{side}", args, env)
        results.append(result)
        print(f"  long epochs {side:5s}: SIGTERM -> every trial's checkpoint on disk {_fmt(result['sigterm_to_checkpoints_s'])}, "
              f"-> exit {_fmt(result['sigterm_to_exit_s'])}, steps trained twice {result['steps_trained_twice']}", flush=True)
    return results


def _fmt(value) -> str:
    return "never" if value is None else f"{value:.1f} s"


if __name__ == "__main__" and len(sys.argv) > 2 and sys.argv[1] == "--child":
    side, work = sys.argv[2], Path(sys.argv[3])
    step_seconds, deadline, max_epochs = float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
    sys.exit(child_lt(work, step_seconds, deadline, max_epochs) if side == "lt" else child_plain(work, step_seconds, max_epochs))
