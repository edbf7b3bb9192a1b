"""`checkpoint_every` and `checkpoint_compression` in a real Lightning Trainer (Tune's report recorded, no Ray)."""

import shutil
import sys
import threading
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from ray import tune

from lightning_bohb.callbacks import TunePauseCallback, TuneReportCallback
from lightning_bohb.callbacks.tune_report_callback import COMPRESSED_CHECKPOINT_FILE, readable_checkpoint
from lightning_bohb.exceptions import ConfigError

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from digits_model import DigitsClassifier, DigitsDataModule  # noqa: E402


class PausesAtEpoch1(DigitsClassifier):
    def __init__(self, signal_file, **kwargs):
        super().__init__(**kwargs)
        self.signal_file = signal_file

    def on_train_epoch_end(self):
        if self.current_epoch == 1:
            Path(self.signal_file).touch()  # a pause requested during epoch 1's end, not a checkpoint epoch


def _fit(tmp_path, monkeypatch, max_epochs, **report_options):
    """Fit with the report and pause callbacks; returns [(epoch, copy of the checkpoint folder or None)]."""
    reports = []

    def report(metrics, checkpoint=None):
        kept = None
        if checkpoint is not None:
            kept = tmp_path / f"reported_{metrics['epoch']}"
            shutil.copytree(checkpoint.path, kept)
        reports.append((metrics["epoch"], kept))

    monkeypatch.setattr(tune, "report", report)
    signal_file = tmp_path / "pause.signal"
    pause = TunePauseCallback(pause_signal_file=signal_file, check_interval=0.05)

    def cancel_when_held():
        while pause.pauses == 0:
            threading.Event().wait(0.05)
        signal_file.unlink()

    threading.Thread(target=cancel_when_held, daemon=True).start()
    trainer = pl.Trainer(
        max_epochs=max_epochs, callbacks=[TuneReportCallback("val_loss", **report_options), pause], logger=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0, limit_train_batches=2,
        limit_val_batches=1, default_root_dir=tmp_path,
    )
    trainer.fit(PausesAtEpoch1(str(signal_file)), DigitsDataModule())
    assert pause.pauses == 1
    return reports


def test_checkpoint_every_k_epochs_the_last_and_where_the_trial_pauses(tmp_path, monkeypatch):
    reports = _fit(tmp_path, monkeypatch, max_epochs=5, checkpoint_every=3)
    assert [epoch for epoch, _ in reports] == [0, 1, 2, 3, 4]  # every epoch reports its metrics
    assert [epoch for epoch, kept in reports if kept] == [1, 2, 4]  # pause, 3rd, last
    assert all(sorted(p.name for p in kept.iterdir()) == ["checkpoint.ckpt"] for _, kept in reports if kept)


def test_default_checkpoints_every_epoch(tmp_path, monkeypatch):
    reports = _fit(tmp_path, monkeypatch, max_epochs=3)
    assert [epoch for epoch, kept in reports if kept] == [0, 1, 2]


def test_compressed_checkpoints_read_back_as_lightning_checkpoints(tmp_path, monkeypatch):
    reports = _fit(tmp_path, monkeypatch, max_epochs=2, compression="zstd")
    for epoch, kept in reports:
        assert sorted(p.name for p in kept.iterdir()) == [COMPRESSED_CHECKPOINT_FILE]
        with readable_checkpoint(str(kept)) as path:
            assert not path.startswith(str(kept))  # decompressed outside the session
            loaded = torch.load(path, weights_only=True)
        assert not Path(path).exists()  # removed once read
        assert loaded["epoch"] == epoch and loaded["state_dict"]
    with readable_checkpoint(str(tmp_path)) as plain:
        assert plain == str(tmp_path / "checkpoint.ckpt")


def test_checkpoint_every_is_refused_with_a_scheduler_that_pauses_trials():
    from ray.tune.schedulers import ASHAScheduler, HyperBandScheduler

    from lightning_bohb.core.optimizer import _check_checkpoint_every

    _check_checkpoint_every(3, ASHAScheduler())
    _check_checkpoint_every(1, HyperBandScheduler())
    with pytest.raises(ConfigError, match=r"The value of `checkpoint_every` is 3, but must be `1` with HyperBandScheduler"):
        _check_checkpoint_every(3, HyperBandScheduler())
