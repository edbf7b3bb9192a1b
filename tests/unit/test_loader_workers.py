"""`FreshLoaderWorkers`: a trial whose loaders keep persistent workers resumes bitwise exactly.

Real Trainers, real DataLoader worker processes (2 per loader, ``persistent_workers=True``) whose
``__getitem__`` adds noise from the worker's torch RNG, no Ray: a run stopped after an epoch (where a
paused trial's process ends) and resumed from its checkpoint in a new Trainer, as `train_trial` does,
logs the per-epoch losses of the uninterrupted run.
"""

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from lbohb_cli_helpers import TinyData, TinyModel
from lightning_bohb.callbacks import FreshLoaderWorkers, RNGStateCallback
from lightning_bohb.callbacks.epoch_boundary import ValidatedEpochEnd

EPOCHS = 4


class Stop(Exception):
    """Where a paused trial's process ends."""


class Noisy(Dataset):
    """Each read adds fresh noise drawn from the reading process's torch RNG (a worker's)."""

    def __init__(self, data):
        self.data = data

    def __len__(self):
        return len(self.data)

    def __getitem__(self, index):
        x, y = self.data[index]
        return x + 0.1 * torch.randn(x.shape), y


class NoisyPersistentData(TinyData):
    def train_dataloader(self):
        return DataLoader(Noisy(self.train_set), batch_size=8, shuffle=True, num_workers=2, persistent_workers=True)

    def val_dataloader(self):
        return DataLoader(Noisy(self.val_set), batch_size=8, num_workers=2, persistent_workers=True)


class Record(ValidatedEpochEnd):
    """Per-epoch ``(epoch, train_loss_epoch, val_loss)``; saves ``epoch_<n>.ckpt`` and stops after ``stop_after``."""

    def __init__(self, folder: Path, stop_after=None):
        super().__init__()
        self.folder, self.stop_after, self.losses = folder, stop_after, []

    def on_validated_epoch_end(self, trainer, pl_module):
        metrics = trainer.callback_metrics
        self.losses.append((trainer.current_epoch, float(metrics["train_loss_epoch"]), float(metrics["val_loss"])))
        trainer.save_checkpoint(self.folder / f"epoch_{trainer.current_epoch}.ckpt")
        if trainer.current_epoch == self.stop_after:
            raise Stop


def fit(folder: Path, fresh_workers: bool, checkpoint=None, stop_after=None):
    pl.seed_everything(1, workers=True, verbose=False)
    record = Record(folder, stop_after)
    callbacks = [RNGStateCallback(), record] + ([FreshLoaderWorkers()] if fresh_workers else [])
    trainer = pl.Trainer(
        max_epochs=EPOCHS,
        logger=False,
        callbacks=callbacks,
        enable_progress_bar=False,
        enable_model_summary=False,
        deterministic=True,
    )
    try:
        trainer.fit(TinyModel(), datamodule=NoisyPersistentData(), ckpt_path=checkpoint)
    except Stop:
        pass
    return record.losses


def paused_and_resumed(folder: Path, fresh_workers: bool):
    first = fit(folder, fresh_workers, stop_after=1)
    return first + fit(folder, fresh_workers, checkpoint=folder / "epoch_1.ckpt")


def test_persistent_workers_with_worker_randomness_resume_exactly(tmp_path):
    expected = fit(tmp_path / "uninterrupted", fresh_workers=True)
    assert [epoch for epoch, _, _ in expected] == list(range(EPOCHS))
    assert paused_and_resumed(tmp_path / "paused", fresh_workers=True) == expected  # bitwise: floats compared with ==


def test_without_fresh_workers_the_same_resume_differs(tmp_path):
    """The test above can fail: the workers' noise reaches the losses, and kept workers diverge on resume."""
    expected = fit(tmp_path / "uninterrupted", fresh_workers=False)
    resumed = paused_and_resumed(tmp_path / "paused", fresh_workers=False)
    assert resumed[:2] == expected[:2] and resumed[2:] != expected[2:]


def _optimizer(persistent_workers: bool):
    from ray import tune

    from lightning_bohb.core.optimization_config import OptimizationConfig
    from lightning_bohb.core.optimizer import ConfigDrivenOptimizer
    from lightning_bohb.core.search_space import SearchSpace

    class Space(SearchSpace):
        def get_search_space(self):
            return {"model.init_args.lr": tune.uniform(0.01, 0.1)}

        def get_metric_config(self):
            return {"metric": "val_loss", "mode": "min"}

    data = {"num_workers": 2, "persistent_workers": persistent_workers}
    config = {
        "trainer": {"callbacks": [{"class_path": "LearningRateMonitor"}]},
        "model": {"class_path": "lbohb_cli_helpers.TinyModel"},
        "data": {"class_path": "lbohb_cli_helpers.TinyData", "init_args": data},
    }
    return ConfigDrivenOptimizer(config, Space(), optimization_config=OptimizationConfig(max_epochs=2, cpus_per_trial=3))


@pytest.mark.parametrize("in_config", [True, False], ids=["persistent-in-config", "persistent-in-code"])
def test_best_config_names_the_callback_lightning_cli_builds(monkeypatch, in_config):
    """`best_config.yaml` reruns a trial as it ran: FreshLoaderWorkers is in it, whether the config asks for
    persistent workers or the DataModule's code does (where no config shows them)."""
    import sys

    from lightning.pytorch.cli import LightningCLI

    complete = _optimizer(persistent_workers=in_config).complete_config({"model.init_args.lr": 0.05})
    names = [entry["class_path"] for entry in complete["trainer"]["callbacks"]]
    assert names == ["lightning.pytorch.callbacks.LearningRateMonitor", "lightning_bohb.callbacks.FreshLoaderWorkers"]
    monkeypatch.setattr(sys, "argv", ["main.py"])
    cli = LightningCLI(run=False, args=complete, parser_kwargs={"exit_on_error": False}, save_config_callback=None)
    assert sum(isinstance(c, FreshLoaderWorkers) for c in cli.trainer.callbacks) == 1
