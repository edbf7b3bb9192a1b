"""`LoaderPosition`: a checkpoint taken at a training step resumes at the next step, bitwise.

Real Lightning fits (CPU): an uninterrupted run records every step's loss; a second run saves a
checkpoint at a step in the middle of an epoch, and a third resumes from it. The resumed steps must
equal the uninterrupted ones exactly: same batches in the same order (a shuffled loader, with and
without worker processes; the samples get noise drawn in whichever process reads them) and the same
dropout draws.
"""

import lightning.pytorch as pl
import pytest
import torch

from lightning_bohb.callbacks import FreshLoaderWorkers, RNGStateCallback
from lightning_bohb.callbacks.loader_position import LoaderPosition, ResumableLoader, problem


class Noisy(torch.utils.data.Dataset):
    def __init__(self):
        generator = torch.Generator().manual_seed(0)
        self.x = torch.randn(40, 4, generator=generator)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, index):
        return self.x[index] + 0.1 * torch.randn(4), index


class StepModel(pl.LightningModule):
    def __init__(self, num_workers=0, persistent_workers=False, sampler=None, stateful=False):
        super().__init__()
        self.stateful = stateful
        self.layer = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.5), torch.nn.Linear(8, 1))
        self.num_workers, self.persistent_workers, self.sampler = num_workers, persistent_workers, sampler
        self.steps = []

    def training_step(self, batch, batch_idx):
        x, index = batch
        loss = self.layer(x).pow(2).mean()
        self.steps.append((self.current_epoch, batch_idx, index.tolist(), loss.item()))
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        options = {"sampler": self.sampler} if self.sampler is not None else {"shuffle": True}
        if self.stateful:
            from torchdata.stateful_dataloader import StatefulDataLoader

            return StatefulDataLoader(Noisy(), batch_size=4, num_workers=self.num_workers, **options)
        return torch.utils.data.DataLoader(
            Noisy(), batch_size=4, num_workers=self.num_workers, persistent_workers=self.persistent_workers, **options
        )


class SaveAtStep(pl.Callback):
    def __init__(self, path, epoch, batch_idx):
        self.path, self.epoch, self.batch_idx = path, epoch, batch_idx

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if (trainer.current_epoch, batch_idx) == (self.epoch, self.batch_idx):
            trainer.save_checkpoint(self.path)
            trainer.should_stop = True  # the trial ends here (held, then released)


def _fit(make, callbacks, ckpt_path=None):
    pl.seed_everything(3)
    model = make()
    trainer = pl.Trainer(
        max_epochs=3, callbacks=[LoaderPosition(), RNGStateCallback(), FreshLoaderWorkers(), *callbacks],
        logger=False, enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
        num_sanity_val_steps=0, deterministic=True,
    )
    trainer.fit(model, ckpt_path=ckpt_path, weights_only=False)
    return model.steps


LOADERS = [(0, False, False), (2, False, False), (2, True, False), (0, False, True), (2, False, True)]


@pytest.mark.parametrize("num_workers,persistent,stateful", LOADERS)
def test_resumed_mid_epoch_trains_the_remaining_steps_bitwise(tmp_path, num_workers, persistent, stateful):
    """A plain DataLoader (replayed by `ResumableLoader`) and torchdata's StatefulDataLoader (its own state)."""
    make = lambda: StepModel(num_workers, persistent, stateful=stateful)  # noqa: E731
    reference = _fit(make, [])
    path = str(tmp_path / "step.ckpt")
    before = _fit(make, [SaveAtStep(path, epoch=1, batch_idx=3)])
    resumed = _fit(make, [], ckpt_path=path)

    assert len(reference) == 30 and before == reference[: len(before)]
    assert before[-1][:2] == (1, 3) and resumed[0][:2] == (1, 4)  # the next step, not the epoch's first
    assert before + resumed == reference  # same batches, same order, same losses, bitwise


def test_a_loader_that_cannot_be_replayed_is_named_and_left_as_it_is():
    sampler = torch.utils.data.WeightedRandomSampler([1.0] * 40, num_samples=40)
    model = StepModel(sampler=sampler)
    position = LoaderPosition()
    pl.Trainer(max_epochs=1, callbacks=[position], logger=False, enable_progress_bar=False,
               enable_model_summary=False, enable_checkpointing=False, limit_val_batches=0).fit(model)
    assert position.problem == "its sampler is a WeightedRandomSampler, which LightningTune cannot replay"
    assert len(model.steps) == 10  # trained as before
    loader = torch.utils.data.DataLoader(Noisy(), batch_size=4, shuffle=True, num_workers=1, persistent_workers=True)
    assert problem(loader) == "its persistent workers carry their random state from one epoch into the next"
    assert problem(loader, fresh_workers=True) is None and problem(ResumableLoader(loader)) is None
    assert "IterableDataset" in problem(torch.utils.data.DataLoader(Stream()))
    assert problem([loader]) == "it is a list, not a DataLoader or a loader with state_dict()/load_state_dict()"


class Stream(torch.utils.data.IterableDataset):
    def __iter__(self):
        return iter(range(3))


def test_settings_lightning_gives_the_loader_reach_the_wrapped_loader(monkeypatch):
    # LightningCLI seeds with workers=True: Lightning then sets `worker_init_fn` on the training loader,
    # which must seed the real loader's workers, not an attribute of the wrapper
    from lightning.fabric.utilities.seed import pl_worker_init_function
    from lightning.pytorch.trainer.connectors.data_connector import _auto_add_worker_init_fn

    monkeypatch.setenv("PL_SEED_WORKERS", "1")
    loader = torch.utils.data.DataLoader(Noisy(), batch_size=4, shuffle=True, num_workers=2)
    wrapped = ResumableLoader(loader)
    _auto_add_worker_init_fn(wrapped, 0)
    assert loader.worker_init_fn is not None and loader.worker_init_fn.func is pl_worker_init_function
    assert wrapped.worker_init_fn is loader.worker_init_fn and "worker_init_fn" not in vars(wrapped)
