"""The trivial trial of `bench/search_quality.py`: a LightningModule whose validation loss at epoch e is MF-Hartmann-6 at fidelity e.

Its six init arguments ``X_0`` .. ``X_5`` are the config; training is one step on one zero-sized
batch (a single parameter, SGD with lr 0), so an epoch costs Lightning's own per-epoch work and
little else. Also here: the search space (module level, importable by trials), the base config the
product is given, and the hand-written Ray Tune trainable that trains the same module.
"""

import os

import lightning.pytorch as pl
import torch
from ray import tune
from torch.utils.data import DataLoader, TensorDataset

from lightning_bohb import SearchSpace
from mf_hartmann import DIMS, mf_hartmann6
from scale_model import TRAINER_KWARGS as TINY_TRAINER_KWARGS
from scale_model import _ReportCheckpoint

NAMES = tuple(f"X_{i}" for i in range(DIMS))
# scale.py's trial settings (no logger, progress bar or model summary), and no sanity check; the product
# writes its own checkpoint each epoch, the trainable below too (scale_model's report callback).
TRAINER_KWARGS = {**TINY_TRAINER_KWARGS, "enable_checkpointing": False, "num_sanity_val_steps": 0}
BASE_CONFIG = {"model": {"class_path": "hartmann_model.HartmannModule"}, "trainer": dict(TRAINER_KWARGS)}


class HartmannModule(pl.LightningModule):
    def __init__(self, X_0: float = 0.5, X_1: float = 0.5, X_2: float = 0.5, X_3: float = 0.5, X_4: float = 0.5, X_5: float = 0.5):
        super().__init__()
        self.xs = (X_0, X_1, X_2, X_3, X_4, X_5)
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def _loader(self):
        return DataLoader(TensorDataset(torch.zeros(1, 1)), batch_size=1)

    train_dataloader = val_dataloader = _loader

    def training_step(self, batch, batch_idx):
        return (self.weight * batch[0]).sum()

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", mf_hartmann6(self.current_epoch + 1, self.xs))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


class HartmannSpace(SearchSpace):
    VERSION = "1.0.0"

    def get_search_space(self):
        return search_space()

    def get_metric_config(self):
        return {"metric": "val_loss", "mode": "min"}


def search_space():
    return {name: tune.uniform(0.0, 1.0) for name in NAMES}


def plain_trainable(config, max_epochs: int):
    """A hand-written Ray Tune function trainable: fit, report + checkpoint each epoch, resume from Tune's checkpoint."""
    model = HartmannModule(**{name: float(config[name]) for name in NAMES})
    trainer = pl.Trainer(max_epochs=max_epochs, callbacks=[_ReportCheckpoint()], **TRAINER_KWARGS)
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        trainer.fit(model)
        return
    with checkpoint.as_directory() as directory:
        trainer.fit(model, ckpt_path=os.path.join(directory, "checkpoint.ckpt"))
