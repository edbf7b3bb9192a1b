"""The trivially cheap trial of `bench/scale.py`: a tiny regressor on 64 fixed random rows, one batch an epoch.

An epoch costs Lightning's own per-epoch work and little else, so a search of many such trials
measures what the driver does per result. Also here: the search space (module level, so that a
resumed session can import it) and the hand-written Ray Tune trainable that trains the same module.
"""

import os
import tempfile

import lightning.pytorch as pl
import torch
from ray import tune
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_bohb import SearchSpace

TRAINER_KWARGS = dict(
    accelerator="cpu",
    devices=1,
    deterministic=True,
    enable_progress_bar=False,
    enable_model_summary=False,
    logger=False,
)


class TinyData(pl.LightningDataModule):
    def __init__(self, rows: int = 64):
        super().__init__()
        self.rows = rows

    def setup(self, stage=None):
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(self.rows, 8, generator=generator)
        y = x @ torch.arange(8, dtype=torch.float32) / 8 + 0.1 * torch.randn(self.rows, generator=generator)
        self.data = TensorDataset(x, y)

    def train_dataloader(self):
        return DataLoader(self.data, batch_size=self.rows)

    def val_dataloader(self):
        return DataLoader(self.data, batch_size=self.rows)


class TinyRegressor(pl.LightningModule):
    def __init__(self, hidden_size: int = 8, lr: float = 1e-2):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(8, hidden_size), nn.ReLU(), nn.Linear(hidden_size, 1))
        self.lr = lr

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.mse_loss(self.net(x).squeeze(-1), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self.net(x).squeeze(-1), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)


class TinySpace(SearchSpace):
    VERSION = "1.0.0"

    def get_search_space(self):
        return {"lr": tune.loguniform(1e-3, 1e-1), "hidden_size": tune.choice([4, 8, 16])}

    def get_metric_config(self):
        return {"metric": "val_loss", "mode": "min"}


class _ReportCheckpoint(pl.Callback):
    """What a hand-written script does: after each validated epoch, save a checkpoint and tune.report it."""

    def on_validation_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        metrics = {k: (v.item() if hasattr(v, "item") else v) for k, v in trainer.callback_metrics.items()}
        metrics["epoch"] = trainer.current_epoch
        with tempfile.TemporaryDirectory() as tmp:
            trainer.save_checkpoint(os.path.join(tmp, "checkpoint.ckpt"))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))


def plain_trainable(config, max_epochs: int = 3, seed: int = 42):
    """A hand-written Ray Tune function trainable for `TinyRegressor`: fit, report + checkpoint each epoch, resume."""
    pl.seed_everything(seed, workers=True, verbose=False)
    model = TinyRegressor(hidden_size=int(config["hidden_size"]), lr=float(config["lr"]))
    trainer = pl.Trainer(max_epochs=max_epochs, callbacks=[_ReportCheckpoint()], enable_checkpointing=False, **TRAINER_KWARGS)
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        trainer.fit(model, datamodule=TinyData())
        return
    with checkpoint.as_directory() as directory:
        trainer.fit(model, datamodule=TinyData(), ckpt_path=os.path.join(directory, "checkpoint.ckpt"))
