"""Benchmark model: the example digits classifier, timing itself and (optionally) with a floor on epoch time.

Every variant of every benchmark trains this exact class, so the model's own cost is identical
everywhere. It appends one JSON line per event to ``$BENCH_RECORD_DIR/<trial>.jsonl`` (nothing when
the variable is unset): ``init`` (with the age of the process, i.e. how long the process spent
starting and importing before it built the model), ``train_start``, ``epoch_start``, ``epoch_end``.

Also here: the pieces a *hand-written* Ray Tune + Lightning script has (`report_callback`,
`plain_tune_trainable`) and the bare-Lightning trainer (`train_bare`), so they are written once.
"""

import json
import os
import tempfile
import time

import lightning.pytorch as pl
import torch

from digits_model import DigitsClassifier, DigitsDataModule

# The Trainer settings LightningTune applies in every trial (its _QUIET_TRAINER_DEFAULTS) plus the
# example's config.yaml; every variant uses exactly these.
TRAINER_KWARGS = dict(
    accelerator="cpu",
    devices=1,
    deterministic=True,
    enable_progress_bar=False,
    enable_model_summary=False,
    logger=False,
)


def _trial_name() -> str:
    name = os.environ.get("BENCH_TRIAL_NAME")
    if name:
        return name
    try:
        from ray import tune

        return tune.get_context().get_trial_id() or f"pid{os.getpid()}"
    except Exception:
        return f"pid{os.getpid()}"


def _process_age() -> float:
    try:
        import psutil

        return time.time() - psutil.Process().create_time()
    except Exception:
        return float("nan")


class TimedDigitsClassifier(DigitsClassifier):
    """`DigitsClassifier` that records its epoch events; each epoch trains for >= ``min_epoch_seconds``."""

    def __init__(self, min_epoch_seconds: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.min_epoch_seconds = min_epoch_seconds
        self._epoch_started = 0.0
        self._record("init", process_age=_process_age(), threads=torch.get_num_threads())

    def _record(self, event, **extra):
        record_dir = os.environ.get("BENCH_RECORD_DIR")
        if not record_dir:
            return
        epoch = self.current_epoch if self._trainer is not None else None
        row = {"event": event, "t": time.time(), "pid": os.getpid(), "epoch": epoch, **extra}
        with open(os.path.join(record_dir, f"{_trial_name()}.jsonl"), "a") as handle:
            handle.write(json.dumps(row) + "\n")

    def on_train_start(self):
        self._record("train_start")

    def on_train_epoch_start(self):
        self._epoch_started = time.monotonic()
        self._record("epoch_start")

    def _fill_epoch(self):
        remaining = self.min_epoch_seconds - (time.monotonic() - self._epoch_started)
        if remaining > 0:
            time.sleep(remaining)

    def on_validation_start(self):
        # The floor is spent before validation, so the epoch's report and checkpoint come at its very
        # end whichever way a script reports (at validation end, or at train epoch end).
        if not self.trainer.sanity_checking:
            self._fill_epoch()

    def on_train_epoch_end(self):
        self._fill_epoch()
        self._record("epoch_end")


def build(config, min_epoch_seconds: float = 0.0):
    """Model and datamodule for one sampled config (lr, hidden_size, num_layers, batch_size)."""
    model = TimedDigitsClassifier(
        min_epoch_seconds=min_epoch_seconds,
        hidden_size=int(config["hidden_size"]),
        num_layers=int(config["num_layers"]),
        dropout=0.1,
        lr=float(config["lr"]),
    )
    return model, DigitsDataModule(batch_size=int(config["batch_size"]))


def train_bare(config, max_epochs: int, seed: int = 42) -> None:
    """Plain Lightning: the same model, data, seed and Trainer settings; no Ray, no checkpoints."""
    pl.seed_everything(seed, workers=True, verbose=False)
    model, data = build(config)
    trainer = pl.Trainer(max_epochs=max_epochs, enable_checkpointing=False, **TRAINER_KWARGS)
    trainer.fit(model, datamodule=data)


class ReportCheckpointCallback(pl.Callback):
    """What a hand-written script does: after each validated epoch, save a checkpoint and tune.report it."""

    def __init__(self):
        self._validated = False

    def on_validation_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            self._validated = True

    def on_train_epoch_end(self, trainer, pl_module):
        if not self._validated:
            return
        self._validated = False
        from ray import tune

        metrics = {k: (v.item() if hasattr(v, "item") else v) for k, v in trainer.callback_metrics.items()}
        metrics["epoch"] = trainer.current_epoch
        metrics["global_step"] = trainer.global_step
        with tempfile.TemporaryDirectory() as tmp:
            trainer.save_checkpoint(os.path.join(tmp, "checkpoint.ckpt"))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))


def plain_tune_trainable(config, max_epochs: int = 3, seed: int = 42, min_epoch_seconds: float = 0.0):
    """A hand-written Ray Tune function trainable: build, fit, report + checkpoint each epoch, resume."""
    from ray import tune

    pl.seed_everything(seed, workers=True, verbose=False)
    model, data = build(config, min_epoch_seconds)
    trainer = pl.Trainer(max_epochs=max_epochs, callbacks=[ReportCheckpointCallback()], enable_checkpointing=False, **TRAINER_KWARGS)
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        trainer.fit(model, datamodule=data)
        return
    with checkpoint.as_directory() as directory:
        trainer.fit(model, datamodule=data, ckpt_path=os.path.join(directory, "checkpoint.ckpt"))
