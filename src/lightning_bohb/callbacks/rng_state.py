"""Save and restore the RNG states (python, numpy, torch, CUDA) with every Lightning checkpoint.

Restored when the checkpoint loads, before the next epoch's data order is drawn, so a resumed
trial draws exactly what the uninterrupted one would. States are stored as plain lists and byte
tensors, so the checkpoint still loads with torch's ``weights_only=True``. A trial on several DDP
ranks stores every rank's states (gathered into the checkpoint rank 0 writes) under ``"ranks"``;
each rank restores its own.
"""

from __future__ import annotations

import random
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
from lightning.pytorch import Callback
from typing_extensions import override


class RNGStateCallback(Callback):
    """Checkpoints the process's random-number-generator states."""

    @override
    def state_dict(self) -> Dict[str, Any]:
        version, mt_state, gauss = random.getstate()
        name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
        state = {
            "python": [version, list(mt_state), gauss],
            "numpy": [name, np.asarray(keys).tolist(), int(pos), int(has_gauss), float(cached)],
            "torch": torch.get_rng_state(),
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        world = _world()
        if world is None:
            return state
        ranks: List[Any] = [None] * world[1]
        torch.distributed.all_gather_object(ranks, state)  # every rank takes the checkpoint; rank 0 writes it
        return {"ranks": ranks}

    @override
    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        if "ranks" in state_dict:  # a trial on several devices: each rank resumes with its own states
            world = _world()
            rank, size = world if world is not None else (0, 1)
            if size != len(state_dict["ranks"]):
                raise RuntimeError(
                    f"The checkpoint holds the RNG states of {len(state_dict['ranks'])} ranks, but this trial runs {size}: "
                    "it resumes exactly only on the devices it was paused with (`trainer.devices`)."
                )
            state_dict = state_dict["ranks"][rank]
        version, mt_state, gauss = state_dict["python"]
        random.setstate((version, tuple(mt_state), gauss))
        name, keys, pos, has_gauss, cached = state_dict["numpy"]
        np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
        torch.set_rng_state(state_dict["torch"])
        if "cuda" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])


def _world() -> Optional[Tuple[int, int]]:
    """``(rank, world size)`` when this process is one of several DDP ranks, else ``None``."""
    if torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1:
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return None
