"""Models for the e2e tests: the example classifier, recording every epoch hook it runs."""

import json
import os
import threading
import time

import lightning.pytorch as pl
import torch

from digits_model import DigitsClassifier


class RecordingClassifier(DigitsClassifier):
    """Appends each epoch hook to ``<record_dir>/<trial_id>.jsonl``; each epoch takes >= ``min_epoch_seconds``.

    With ``crash_once_file``, the first trial to end an epoch >= 1 while that file exists removes it
    and crashes. With ``hold_checkpoint_marker``, the first trial to save a checkpoint of an epoch
    >= 1 creates that file and blocks in the middle of the save (a kill -9 test ends it).

    The floor on epoch time stands in for a bigger model, so that a pause can land mid-search.
    """

    def __init__(
        self,
        record_dir: str = "",
        min_epoch_seconds: float = 0.0,
        crash_once_file: str = "",
        hold_checkpoint_marker: str = "",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.record_dir = record_dir
        self.crash_once_file = crash_once_file
        self.hold_checkpoint_marker = hold_checkpoint_marker
        self.min_epoch_seconds = min_epoch_seconds
        self._epoch_started = 0.0

    def _record(self, hook):
        if not self.record_dir:
            return
        import ray
        from ray import tune

        path = os.path.join(self.record_dir, f"{tune.get_context().get_trial_id()}.jsonl")
        event = {"hook": hook, "epoch": self.current_epoch, "pid": os.getpid(), "node": ray.get_runtime_context().get_node_id()}
        if hook == "train_epoch_end":
            event["val_loss"] = float(self.trainer.callback_metrics["val_loss"])
            event["config"] = {"lr": self.lr, "hidden_size": self.hparams.hidden_size}
        with open(path, "a") as handle:
            handle.write(json.dumps(event) + "\n")

    def on_train_epoch_start(self):
        self._epoch_started = time.monotonic()
        self._record("train_epoch_start")

    def on_train_epoch_end(self):
        remaining = self.min_epoch_seconds - (time.monotonic() - self._epoch_started)
        if remaining > 0:
            time.sleep(remaining)
        self._record("train_epoch_end")
        if self.crash_once_file and self.current_epoch >= 1:
            try:
                os.remove(self.crash_once_file)  # the first trial to get here crashes, once
            except FileNotFoundError:
                return
            raise RuntimeError("injected crash")

    def on_save_checkpoint(self, checkpoint):
        if not self.hold_checkpoint_marker or self.current_epoch < 1:
            return
        try:
            os.close(os.open(self.hold_checkpoint_marker, os.O_CREAT | os.O_EXCL))  # the first trial only
        except FileExistsError:
            return
        threading.Event().wait()  # mid-checkpoint until the test kills the session


# -- A LightningCLI project written the usual way (issue 11): an injected encoder, optimizer and
# scheduler from the YAML's `optimizer:`/`lr_scheduler:`, a loader with worker processes whose
# samples are augmented with random noise drawn in the workers (so the workers' RNG matters).


class MLPEncoder(torch.nn.Module):
    """The injected part: ``model.init_args.encoder: {class_path: e2e_models.MLPEncoder, init_args: {hidden: 8}}``."""

    def __init__(self, hidden: int = 16, depth: int = 1, in_features: int = 8):
        super().__init__()
        layers, width = [], in_features
        for _ in range(depth):
            layers += [torch.nn.Linear(width, hidden), torch.nn.Tanh()]
            width = hidden
        self.net = torch.nn.Sequential(*layers)
        self.out_features = width

    def forward(self, x):
        return self.net(x)


class WideEncoder(MLPEncoder):
    """An alternative encoder (a choice between classes): one wide layer, no ``depth``."""

    def __init__(self, hidden: int = 32, in_features: int = 8):
        super().__init__(hidden=hidden, depth=1, in_features=in_features)


class EncoderRegressor(pl.LightningModule):
    """A regression head on an injected encoder; no ``configure_optimizers``: the YAML's ``optimizer:`` decides."""

    def __init__(self, encoder: torch.nn.Module, head_bias: bool = True):
        super().__init__()
        self.save_hyperparameters()
        self.encoder = encoder
        self.head = torch.nn.Linear(encoder.out_features, 1, bias=head_bias)

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


class NoisyDataset(torch.utils.data.Dataset):
    """Fixed points; each read adds fresh noise from the reading process's torch RNG (a worker's, with workers)."""

    def __init__(self, x, y, noise: float):
        self.x, self.y, self.noise = x, y, noise

    def __len__(self):
        return len(self.x)

    def __getitem__(self, index):
        return self.x[index] + self.noise * torch.randn(self.x.shape[1]), self.y[index]


class NoiseData(pl.LightningDataModule):
    """128 points of y = sum(x) + noise, a shuffled training loader with ``num_workers`` processes, persistent
    whenever there are any: set in code, as most DataModules do, not in the config."""

    def __init__(self, batch_size: int = 16, num_workers: int = 0, noise: float = 0.1):
        super().__init__()
        self.batch_size, self.num_workers, self.noise = batch_size, num_workers, noise

    def setup(self, stage=None):
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(128, 8, generator=generator)
        y = x.sum(dim=1) + 0.1 * torch.randn(128, generator=generator)
        self.train_set = NoisyDataset(x[:96], y[:96], self.noise)
        self.val_set = torch.utils.data.TensorDataset(x[96:], y[96:])

    def train_dataloader(self):
        return torch.utils.data.DataLoader(
            self.train_set,
            batch_size=self.batch_size,
            shuffle=True,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def val_dataloader(self):
        return torch.utils.data.DataLoader(self.val_set, batch_size=64)


class RankRecordingClassifier(DigitsClassifier):
    """Appends, on every DDP rank, each epoch's end to ``<record_dir>/rank<global rank>.jsonl``: the epoch,
    this rank's own ``val_loss`` (not synced: each rank's data and RNG show), its process and placement group.
    Each rank draws a different amount from its RNG per epoch, so a rank resumed with another rank's RNG
    state would draw other dropout masks. ``fail_rank`` raises on that rank at the end of epoch 1."""

    def __init__(self, record_dir: str = "", min_epoch_seconds: float = 0.0, fail_rank: int = -1, **kwargs):
        super().__init__(**kwargs)
        self.record_dir, self.min_epoch_seconds, self.fail_rank = record_dir, min_epoch_seconds, fail_rank
        self._epoch_started = 0.0

    def on_train_epoch_start(self):
        self._epoch_started = time.monotonic()
        torch.rand(self.global_rank + 1)  # each rank's RNG stream its own (rank-dependent augmentation, say)

    def on_train_epoch_end(self):
        import ray

        remaining = self.min_epoch_seconds - (time.monotonic() - self._epoch_started)
        if remaining > 0:
            time.sleep(remaining)
        group = ray.util.get_current_placement_group()
        event = {
            "epoch": self.current_epoch,
            "val_loss": float(self.trainer.callback_metrics["val_loss"]),
            "world_size": self.trainer.world_size,
            "pid": os.getpid(),
            "bundles": group.bundle_specs if group is not None else None,
        }
        with open(os.path.join(self.record_dir, f"rank{self.global_rank}.jsonl"), "a") as handle:
            handle.write(json.dumps(event) + "\n")
        if self.global_rank == self.fail_rank and self.current_epoch == 1:
            raise RuntimeError(f"injected failure on rank {self.fail_rank}")  # the other rank waits in a collective


# -- Step-level pause (issue 13): slow steps, every step's loss recorded, a loader that may not resume.


class StepLossRegressor(EncoderRegressor):
    """`EncoderRegressor` with dropout, a floor of ``step_seconds`` per training step (a long epoch), and
    every step's loss appended to ``<record_dir>/<trial_id>.jsonl`` (with its batch's sample indices)."""

    def __init__(self, encoder: torch.nn.Module, record_dir: str = "", step_seconds: float = 0.0, lr: float = 0.05):
        super().__init__(encoder)
        self.dropout = torch.nn.Dropout(0.2)
        self.record_dir, self.step_seconds, self.lr = record_dir, step_seconds, lr

    def forward(self, x):
        return self.head(self.dropout(self.encoder(x))).squeeze(-1)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)

    def training_step(self, batch, batch_idx):
        started = time.monotonic()
        x, y, index = batch
        loss = torch.nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        self._record({"hook": "step", "epoch": self.current_epoch, "batch": batch_idx, "index": index.tolist(), "loss": loss.item()})
        time.sleep(max(0.0, self.step_seconds - (time.monotonic() - started)))
        return loss

    def validation_step(self, batch, batch_idx):
        x, y, _ = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self(x), y))

    def on_train_epoch_end(self):
        self._record({"hook": "train_epoch_end", "epoch": self.current_epoch})

    def _record(self, event):
        if not self.record_dir:
            return
        from ray import tune

        with open(os.path.join(self.record_dir, f"{tune.get_context().get_trial_id()}.jsonl"), "a") as handle:
            handle.write(json.dumps(event) + "\n")


class IndexedNoisyDataset(NoisyDataset):
    def __getitem__(self, index):
        x, y = super().__getitem__(index)
        return x, y, index


class StepData(pl.LightningDataModule):
    """``samples`` points of y = sum(x), a shuffled training loader (noise drawn where samples are read).

    ``sampler: weighted`` draws the training order with a `WeightedRandomSampler`, which a checkpoint
    in the middle of an epoch cannot replay.
    """

    def __init__(self, batch_size: int = 4, samples: int = 80, num_workers: int = 0, sampler: str = "shuffle"):
        super().__init__()
        self.batch_size, self.samples, self.num_workers, self.sampler = batch_size, samples, num_workers, sampler

    def setup(self, stage=None):
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(self.samples + 16, 8, generator=generator)
        y = x.sum(dim=1)
        self.train_set = IndexedNoisyDataset(x[: self.samples], y[: self.samples], 0.1)
        self.val_set = IndexedNoisyDataset(x[self.samples :], y[self.samples :], 0.0)

    def train_dataloader(self):
        if self.sampler == "weighted":
            order = {"sampler": torch.utils.data.WeightedRandomSampler([1.0] * self.samples, self.samples)}
        else:
            order = {"shuffle": True}
        return torch.utils.data.DataLoader(self.train_set, batch_size=self.batch_size, num_workers=self.num_workers, **order)

    def val_dataloader(self):
        return torch.utils.data.DataLoader(self.val_set, batch_size=16)
