"""Tiny Lightning classes that unit-test configs name by ``class_path`` (LightningCLI needs real ones)."""

from typing import Optional

import lightning.pytorch as pl
import torch
from lightning.pytorch.cli import LightningCLI
from torch.utils.data import DataLoader, TensorDataset


class Encoder(torch.nn.Module):
    def __init__(self, hidden: int = 4, depth: int = 1):
        super().__init__()
        self.net = torch.nn.Sequential(*[torch.nn.Linear(4 if i == 0 else hidden, hidden) for i in range(depth)])
        self.out_features = hidden

    def forward(self, x):
        return self.net(x)


class WideEncoder(Encoder):
    def __init__(self, hidden: int = 8):
        super().__init__(hidden=hidden, depth=1)


class TinyModel(pl.LightningModule):
    """Logs ``train_loss`` (per step and per epoch) and ``val_loss``; optimizer from ``lr`` unless the CLI's ``optimizer:``."""

    def __init__(self, hidden: int = 4, lr: float = 0.1, encoder: Optional[torch.nn.Module] = None):
        super().__init__()
        self.save_hyperparameters(ignore=["encoder"])
        self.encoder = encoder if encoder is not None else Encoder(hidden)
        self.head = torch.nn.Linear(self.encoder.out_features, 1)
        self.lr = lr

    def forward(self, x):
        return self.head(self.encoder(x)).squeeze(-1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)


class TinyData(pl.LightningDataModule):
    def __init__(self, batch_size: int = 8, num_workers: int = 0, persistent_workers: bool = False):
        super().__init__()
        self.batch_size, self.num_workers, self.persistent_workers = batch_size, num_workers, persistent_workers

    def setup(self, stage=None):
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(48, 4, generator=generator)
        self.train_set = TensorDataset(x[:32], x[:32].sum(dim=1))
        self.val_set = TensorDataset(x[32:], x[32:].sum(dim=1))

    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=16)


class LrData(TinyData):
    """A datamodule that, like the model, takes ``lr``: makes the bare name ``lr`` ambiguous."""

    def __init__(self, lr: float = 0.1, batch_size: int = 8):
        super().__init__(batch_size=batch_size)
        self.lr = lr


class NotesCLI(LightningCLI):
    """A project's own CLI (``add_arguments_to_parser``): an extra top-level ``notes:`` argument."""

    def add_arguments_to_parser(self, parser):
        parser.add_argument("--notes", type=str, default="")


class LinkedCLI(LightningCLI):
    """A project's own CLI that links an argument (``link_arguments``): the model's ``hidden`` is the data's ``batch_size``."""

    def add_arguments_to_parser(self, parser):
        parser.link_arguments("data.init_args.batch_size", "model.init_args.hidden")
