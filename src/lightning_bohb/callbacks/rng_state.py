"""Save and restore the RNG states (python, numpy, torch, CUDA) with every Lightning checkpoint.

Restored when the checkpoint loads, before the next epoch's data order is drawn, so a resumed
trial draws exactly what the uninterrupted one would. States are stored as plain lists and byte
tensors, so the checkpoint still loads with torch's ``weights_only=True``.
"""

from __future__ import annotations

import random
from typing import Any, Dict

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
        return state

    @override
    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        version, mt_state, gauss = state_dict["python"]
        random.setstate((version, tuple(mt_state), gauss))
        name, keys, pos, has_gauss, cached = state_dict["numpy"]
        np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
        torch.set_rng_state(state_dict["torch"])
        if "cuda" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])
