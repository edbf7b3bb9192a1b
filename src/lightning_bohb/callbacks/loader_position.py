"""`LoaderPosition`: make a trial's training loader resumable in the middle of an epoch, exactly.

A checkpoint taken at a training step (a pause whose deadline comes before the epoch end) resumes at
the next step only if the loader gives the same remaining batches in the same order. Lightning saves
and restores a loader that has ``state_dict``/``load_state_dict`` (torchdata's ``StatefulDataLoader``);
an ordinary ``DataLoader`` it restarts from its first batch. This callback wraps the training loader in
`ResumableLoader`, which Lightning saves like any stateful loader:

* a ``DataLoader`` (map-style dataset, ``RandomSampler``/``SequentialSampler``, the default batch
  sampler; torchdata's ``StatefulDataLoader`` too): the torch random states its iterator draws from (the
  global one, the loader's and the sampler's generators) are recorded when an epoch's iterator is made,
  with the number of batches the training loop took; a resumed epoch makes its iterator from those states
  and skips exactly those batches (loaded again, by workers seeded as before, so random augmentation in
  the workers stays equal too, which a StatefulDataLoader's own state does not restore);
* any other loader with ``state_dict``/``load_state_dict`` keeps its own state.

Either way, making the resumed iterator must not draw from the global random state that the checkpoint
restored (it is the state after the last trained step), so that state is put back afterwards.
Anything else (an ``IterableDataset``, a custom sampler, persistent workers, several loaders) cannot be
replayed exactly: `problem` says why, and the pause callback keeps such a trial's pause at the epoch end.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import lightning.pytorch as pl
import torch
from lightning.fabric.utilities.types import _Stateful
from lightning.pytorch import Callback
from typing_extensions import override

from lightning_bohb.callbacks.loader_workers import FreshLoaderWorkers


class ResumableLoader:
    """A training loader whose position within an epoch Lightning saves and restores (see the module).

    Everything else (``len``, ``sampler``, ``batch_size``, ...) is the wrapped loader's.
    """

    def __init__(self, loader: Any) -> None:
        self.loader = loader
        # Every DataLoader (torchdata's StatefulDataLoader too) is replayed: its own state restores the
        # order of the samples but not the random state of its worker processes.
        self._own_state = isinstance(loader, torch.utils.data.DataLoader) or not isinstance(loader, _Stateful)
        self._start: Optional[Dict[str, Any]] = None
        self._taken = 0
        self._to_restore: Optional[Dict[str, Any]] = None
        self.mid_epoch = False
        self.random_before = torch.get_rng_state()
        """The global torch random state before the loader was made (set by `LoaderPosition`): in a resumed
        trial, the state its checkpoint restored, before the loader's construction drew from it (torchdata's
        RandomSampler seeds itself there)."""
        """Whether the training loop is inside an epoch (set by `LoaderPosition`): only then does a
        checkpoint record a position; one taken at an epoch end resumes with the next epoch's iterator."""

    def __len__(self) -> int:
        return len(self.loader)

    @property
    def _iterator(self) -> Any:  # torch's reused iterator of persistent workers (see `FreshLoaderWorkers`)
        return getattr(self.loader, "_iterator", None)

    @_iterator.setter
    def _iterator(self, value: Any) -> None:
        self.loader._iterator = value

    def __getattr__(self, name: str) -> Any:
        if name == "loader":  # not set yet (unpickling): never recurse
            raise AttributeError(name)
        return getattr(self.loader, name)

    def __setattr__(self, name: str, value: Any) -> None:
        # What Lightning sets on the training loader (``worker_init_fn`` when LightningCLI seeds with
        # ``workers=True``) belongs to the wrapped loader, whose workers it seeds.
        if name in _OWN_ATTRIBUTES or isinstance(getattr(type(self), name, None), property):
            object.__setattr__(self, name, value)
        else:
            setattr(self.loader, name, value)

    def __iter__(self) -> Iterator[Any]:
        # A generator: nothing happens until the first batch is asked for, so Lightning's check that
        # a loader is iterable (it calls ``iter()`` once) starts no workers and draws no random numbers.
        position, self._to_restore = self._to_restore, None
        iterator = self._begin(position)
        for batch in iterator:
            self._taken += 1
            yield batch

    def _begin(self, position: Optional[Dict[str, Any]]) -> Iterator[Any]:
        """The wrapped loader's iterator, at the ``position`` a checkpoint recorded (None: a new epoch)."""
        if position is None:
            if self._own_state:
                self._start = _random_states(self.loader)
            self._taken = 0
            return iter(self.loader)
        after_step = self.random_before  # what the checkpoint restored: the state after its last step
        try:
            if not self._own_state:
                self.loader.load_state_dict(position["loader"])
                return iter(self.loader)
            _set_random_states(self.loader, position["random"])
            self._start = _random_states(self.loader)
            iterator = iter(self.loader)
            for _ in range(position["batches"]):
                next(iterator)
            self._taken = position["batches"]
            return iterator
        finally:
            torch.set_rng_state(after_step)

    def state_dict(self) -> Dict[str, Any]:
        if not self._own_state:
            return {"loader": self.loader.state_dict()}
        if not self.mid_epoch or self._start is None:
            return {}
        return {"random": self._start, "batches": self._taken}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        if ("loader" in state_dict) != (not self._own_state) or (self._own_state and state_dict.get("random") is None):
            return  # saved by another kind of loader, or before any epoch began: restart the epoch as Lightning does
        self._to_restore = state_dict


_OWN_ATTRIBUTES = frozenset({"loader", "_own_state", "_start", "_taken", "_to_restore", "mid_epoch", "random_before"})


def problem(loader: Any, fresh_workers: bool = False) -> Optional[str]:
    """Why ``loader`` cannot be resumed exactly in the middle of an epoch; None if it can.

    ``fresh_workers``: `FreshLoaderWorkers` ends persistent workers after each epoch, so every epoch's
    workers are seeded when its iterator is made, as in a resumed epoch.
    """
    if isinstance(loader, ResumableLoader):
        return None
    if not isinstance(loader, torch.utils.data.DataLoader):
        if isinstance(loader, _Stateful):
            return None
        return f"it is a {type(loader).__name__}, not a DataLoader or a loader with state_dict()/load_state_dict()"
    if isinstance(loader.dataset, torch.utils.data.IterableDataset):
        return "its dataset is an IterableDataset, whose position a DataLoader does not record"
    if not _replayable(loader.sampler, (torch.utils.data.RandomSampler, torch.utils.data.SequentialSampler)):
        return f"its sampler is a {type(loader.sampler).__name__}, which LightningTune cannot replay"
    if not _replayable(loader.batch_sampler, (torch.utils.data.BatchSampler,)):
        return f"its batch sampler is a {type(loader.batch_sampler).__name__}, which LightningTune cannot replay"
    if loader.num_workers > 0 and loader.persistent_workers and not fresh_workers:
        return "its persistent workers carry their random state from one epoch into the next"
    return None


class LoaderPosition(Callback):
    """Wraps a trial's training loader in `ResumableLoader` where that resumes it exactly.

    ``problem`` holds why the loader cannot be resumed mid-epoch (None: it can), once training started.
    """

    def __init__(self) -> None:
        self.problem: Optional[str] = "the training loader has not been made yet"
        self._restore: List[Callable[[], None]] = []
        self._loader: Optional[ResumableLoader] = None

    @override
    def setup(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", stage: str) -> None:
        if stage != "fit":
            return
        if trainer.world_size > 1:
            self.problem = "a trial with several processes checkpoints only at epoch ends"
            return
        source = getattr(trainer.fit_loop, "_data_source", None)
        instance, name = getattr(source, "instance", None), getattr(source, "name", None)
        if instance is None or not isinstance(name, str) or not callable(getattr(instance, name, None)):
            self.problem = "Lightning's training data source is not a train_dataloader() hook"
            return
        make = getattr(instance, name)
        had_own = name in vars(instance)
        fresh_workers = any(isinstance(callback, FreshLoaderWorkers) for callback in trainer.callbacks)  # type: ignore[attr-defined]

        def resumable_loader() -> Any:
            before = torch.get_rng_state()
            loader = make()
            self.problem = problem(loader, fresh_workers)
            self._loader = ResumableLoader(loader) if self.problem is None else None
            if self._loader is not None:
                self._loader.random_before = before
            return loader if self._loader is None else self._loader

        setattr(instance, name, resumable_loader)
        self._restore.append(lambda: setattr(instance, name, make) if had_own else delattr(instance, name))

    @override
    def on_train_batch_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", batch: Any, batch_idx: int) -> None:
        if self._loader is not None:
            self._loader.mid_epoch = True

    @override
    def on_train_epoch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if self._loader is not None:  # runs before the report callback's checkpoint (Checkpoint callbacks run last)
            self._loader.mid_epoch = False

    @override
    def teardown(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", stage: str) -> None:
        while self._restore:
            self._restore.pop()()


_TORCHDATA_SAMPLERS = ("RandomSampler", "SequentialSampler", "BatchSampler")


def _replayable(sampler: Any, torch_types: Tuple[type, ...]) -> bool:
    """torch's own sampler types, or torchdata's stateful versions of them (a StatefulDataLoader's)."""
    kind = type(sampler)
    if kind in torch_types:
        return True
    return kind.__module__ == "torchdata.stateful_dataloader.sampler" and kind.__name__ in _TORCHDATA_SAMPLERS


def _generators(loader: Any) -> List[torch.Generator]:
    found: List[torch.Generator] = []
    for owner in (loader, loader.sampler):
        generator = getattr(owner, "generator", None)
        if isinstance(generator, torch.Generator) and all(generator is not g for g in found):
            found.append(generator)
    return found


def _random_states(loader: Any) -> Dict[str, Any]:
    return {"torch": torch.get_rng_state(), "generators": [g.get_state() for g in _generators(loader)]}


def _set_random_states(loader: Any, states: Dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    for generator, state in zip(_generators(loader), states["generators"], strict=True):
        generator.set_state(state)
