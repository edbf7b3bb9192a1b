"""`FreshLoaderWorkers`: persistent DataLoader workers start anew for every pass, as on a resume.

A DataLoader draws its workers' base seed from the main process's torch RNG when it creates an
iterator, and each worker seeds its RNGs from it. Without ``persistent_workers`` that happens at every
``iter()``: each epoch's workers are seeded from the main RNG, which the checkpoint restores
(`RNGStateCallback`), so a resumed trial's workers draw what the uninterrupted trial's draw. With
``persistent_workers: true`` the workers of the first epoch are kept: their RNG runs on across epochs
and the main RNG is not drawn from again, while a resumed trial must start new workers, seeded
differently; random augmentation in ``Dataset.__getitem__`` and every later draw would diverge.

So this callback ends a loader's persistent workers once a pass over it is done (a training
epoch, a validation run): the next ``iter()`` starts new workers seeded from the main RNG, in
uninterrupted and resumed trials alike. The cost is one worker start per loader per pass (per
epoch), what a loader without ``persistent_workers`` pays anyway; loaders without worker processes
or without ``persistent_workers`` are left alone.

Reaches into torch's ``DataLoader._iterator`` (as Lightning's ``CombinedLoader.reset`` does);
``tests/unit/test_loader_workers.py`` checks that a resume stays exact.
"""

from __future__ import annotations

from typing import Any, Dict, Iterator

import lightning.pytorch as pl
from lightning.pytorch import Callback
from typing_extensions import override


class FreshLoaderWorkers(Callback):
    """Ends persistent DataLoader workers after each training epoch and each validation run.

    Runs before the checkpoint callbacks (Lightning calls plain callbacks' ``on_train_epoch_end``
    first), so a trial held at an epoch end holds no idle worker processes.
    """

    @override
    def on_train_epoch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        end_persistent_workers(trainer.train_dataloader)

    @override
    def on_validation_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        end_persistent_workers(trainer.val_dataloaders)


CLASS_PATH = "lightning_bohb.callbacks.FreshLoaderWorkers"


def with_fresh_loader_workers(config: Dict[str, Any]) -> Dict[str, Any]:
    """Add this callback to a LightningCLI config's ``trainer.callbacks`` (in place), unless it is there:
    every trial runs it, so a config that reruns a trial (``best_config.yaml``) seeds persistent workers as
    the trial did, whether the config or the DataModule's code asks for them."""
    trainer = config.setdefault("trainer", {})
    callbacks = trainer.get("callbacks")
    callbacks = [] if callbacks is None else list(callbacks) if isinstance(callbacks, list) else [callbacks]
    names = {entry.get("class_path") if isinstance(entry, dict) else None for entry in callbacks}
    if not names & {CLASS_PATH, f"{__name__}.{FreshLoaderWorkers.__name__}", FreshLoaderWorkers.__name__}:
        callbacks.append({"class_path": CLASS_PATH})
    trainer["callbacks"] = callbacks
    return config


def end_persistent_workers(loaders: Any) -> None:
    """Shut down the worker processes of every DataLoader in ``loaders`` (a loader, or a list, tuple
    or dict of them, as Lightning holds them) that keeps persistent workers; the next ``iter()``
    starts new ones."""
    from torch.utils.data.dataloader import _MultiProcessingDataLoaderIter

    for loader in _flattened(loaders):
        iterator = getattr(loader, "_iterator", None)
        if getattr(loader, "persistent_workers", False) and isinstance(iterator, _MultiProcessingDataLoaderIter):
            iterator._shutdown_workers()
            loader._iterator = None


def _flattened(loaders: Any) -> Iterator[Any]:
    if isinstance(loaders, dict):
        for value in loaders.values():
            yield from _flattened(value)
    elif isinstance(loaders, (list, tuple)):
        for value in loaders:
            yield from _flattened(value)
    elif loaders is not None:
        yield loaders
