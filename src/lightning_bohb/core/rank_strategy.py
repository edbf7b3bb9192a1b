"""Lightning's DDP for the ranks of one trial, each rank a process Ray started (see `core/distributed.py`).

`RankEnvironment` is a `ClusterEnvironment` whose processes are created externally (by Ray), as
Ray Train's `RayLightningEnvironment` and Lightning's own environments for SLURM or torchelastic
are: Lightning then launches nothing (no re-run of ``sys.argv``, which in a Ray worker is Ray's
worker script) and only joins the process group. Ranks and world size come from the environment,
never from ``devices``: each rank process uses one device (``devices: 1`` for it), as with Ray
Train, where Ray has already given each process its own GPU (``CUDA_VISIBLE_DEVICES``).
`RankDDPStrategy` is Lightning's `DDPStrategy` with that one device and the sampler split across the
environment's world, like Ray's `RayDDPStrategy`.
"""

from __future__ import annotations

from typing import Any, Dict

import torch
from lightning.fabric.plugins.environments import ClusterEnvironment
from lightning.pytorch.strategies import DDPStrategy
from typing_extensions import override


class RankEnvironment(ClusterEnvironment):
    """One rank of a trial: its global, local and node rank, the world size and rank 0's address."""

    def __init__(self, world_size: int, global_rank: int, local_rank: int, node_rank: int, address: str, port: int) -> None:
        super().__init__()
        self._world_size, self._global_rank = int(world_size), int(global_rank)
        self._local_rank, self._node_rank = int(local_rank), int(node_rank)
        self._address, self._port = str(address), int(port)

    @property
    @override
    def creates_processes_externally(self) -> bool:
        return True

    @property
    @override
    def main_address(self) -> str:
        return self._address

    @property
    @override
    def main_port(self) -> int:
        return self._port

    @staticmethod
    @override
    def detect() -> bool:
        return False

    @override
    def world_size(self) -> int:
        return self._world_size

    @override
    def set_world_size(self, size: int) -> None:
        pass  # the trial's layout decides, not ``num_nodes * devices`` of one process

    @override
    def global_rank(self) -> int:
        return self._global_rank

    @override
    def set_global_rank(self, rank: int) -> None:
        pass

    @override
    def local_rank(self) -> int:
        return self._local_rank

    @override
    def node_rank(self) -> int:
        return self._node_rank


class RankDDPStrategy(DDPStrategy):
    """`DDPStrategy` for a process that owns one device: its rank and world come from `RankEnvironment`."""

    @property
    @override
    def root_device(self) -> torch.device:
        assert self.parallel_devices is not None
        return self.parallel_devices[0]

    @property
    @override
    def distributed_sampler_kwargs(self) -> Dict[str, Any]:
        return {"num_replicas": self.world_size, "rank": self.global_rank}
