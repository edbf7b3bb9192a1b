"""Trials that train on several devices: the trial's N DDP ranks, reserved and started through Ray.

A trial whose trainer asks for N devices (``devices: N``, or ``devices: auto`` with ``gpus_per_trial: N``)
runs N ranks of Lightning's DDP. The trial reserves a placement group of N equal bundles, each
``cpus_per_trial / N`` CPUs and ``gpus_per_trial / N`` GPUs (`trial_resources`); the Tune trial process
itself is rank 0 (bundle 0), and ranks 1..N-1 are Ray actors in bundles 1..N-1 of the trial's own
placement group (`RankGroup`). Every rank builds the same LightningCLI config with
`~lightning_bohb.core.rank_strategy.RankDDPStrategy`, whose `RankEnvironment` says the processes
exist already, so Lightning launches nothing and only joins the process group.

Why not Ray Train's ``TorchTrainer`` inside the Tune function (the pattern Ray documents): its
workers report to Tune through Ray Train's callback, which carries metrics but no Tune checkpoint,
so pause/resume would need a second checkpoint path; the pause channel, ``tune.get_checkpoint`` and
``tune.report`` would all run in a controller actor one step removed from the ranks; and a paused
trial would hold a whole Train run. Here rank 0 *is* the Tune trial: it reports metrics and the
checkpoint exactly as a one-device trial does, resumes from ``tune.get_checkpoint()``, and
nothing else in the pause machinery changes. Exactness across ranks needs only what Lightning does
anyway: all ranks agree on a pause with ``strategy.reduce_boolean_decision`` (`TunePauseCallback`),
each rank's RNG state is gathered into rank 0's checkpoint (`RNGStateCallback`), and every rank
resumes from that one checkpoint file (ranks on another node get its bytes through Ray's object store).

The trial's ranks share fate with it: Ray ends actors whose owner died, so a paused or killed trial
leaves no rank behind; a rank that fails closes its process group, so rank 0 stops waiting in a
collective and the trial fails with that rank's error. Every wait on another rank is bounded: a
rank that hangs in a collective is ended by the DDP timeout (the strategy's ``timeout``, 30 min by
default); once rank 0's fit has returned, the other ranks have `RANKS_FINISH_S` seconds to return
too (only their teardown is left), else the trial fails with a `RankError` naming them and every
rank actor is killed; ranks that do not start within `RANKS_START_S` seconds fail the trial too.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import traceback
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from lightning_bohb.exceptions import ConfigError

DEVICE_KEYS = ("accelerator", "devices", "num_nodes", "strategy")
"""Trainer settings that decide how many ranks a trial runs, hence what Ray reserves before it starts."""
GPU_ACCELERATORS = ("gpu", "cuda")
_DROPPED_DDP_ARGUMENTS = ("start_method", "cluster_environment", "parallel_devices", "accelerator", "checkpoint_io", "precision")
"""DDPStrategy arguments the trial sets itself (launching, devices) or the trainer's own flags set."""
RANKS_FINISH_S = 120.0
"""How long the other ranks of a trial may take to return after rank 0's fit has returned."""
RANKS_START_S = 600.0
"""How long the other ranks of a trial may take to start (their bundles are reserved already)."""
_RANK_STRATEGY = "lightning_bohb.core.rank_strategy.RankDDPStrategy"
_RANK_ENVIRONMENT = "lightning_bohb.core.rank_strategy.RankEnvironment"


@dataclass(frozen=True)
class DeviceRequest:
    """What a trial's trainer asks for, read from its config: ``ranks`` processes on ``accelerator``."""

    accelerator: str
    ranks: int


def device_request(trainer: Any, cpus_per_trial: float, gpus_per_trial: float, searched: Sequence[str] = ()) -> DeviceRequest:
    """The trainer's request (parsed ``trainer`` section) checked against the trial's resources.

    Raises `ConfigError` with the fix (``gpus_per_trial: N`` or ``devices: 1``) when they disagree:
    the check runs in the driver, before Ray starts.
    """
    trainer = _as_dict(trainer)
    for key in DEVICE_KEYS:
        if f"trainer.{key}" in searched:
            raise ConfigError(
                f"`trainer.{key}` is in the search space, but it decides how many devices a trial uses and so what Ray "
                f"reserves for the trial before it starts. Fix it in the base config and search other values."
            )
    accelerator = _accelerator_name(trainer.get("accelerator", "auto"))
    devices = trainer.get("devices", "auto")
    num_nodes = int(trainer.get("num_nodes") or 1)
    gpu = accelerator in GPU_ACCELERATORS or (accelerator == "auto" and gpus_per_trial > 0)
    if accelerator in GPU_ACCELERATORS and gpus_per_trial <= 0:
        wanted = _explicit_devices(devices) or 1
        raise ConfigError(
            f"`trainer.accelerator` is {accelerator!r}, but `gpus_per_trial` is {gpus_per_trial}: Ray reserves no GPU "
            f"for a trial then, and hides every GPU from it. Set `gpus_per_trial: {wanted}` in OptimizationConfig "
            "(one GPU per device), or `accelerator: cpu`."
        )
    per_node = _devices_per_node(devices, gpu, gpus_per_trial)
    ranks = per_node * num_nodes
    if gpu and gpus_per_trial >= 1 and float(gpus_per_trial) != float(ranks):
        if ranks > 1:
            raise ConfigError(
                f"The trainer asks for {ranks} devices on accelerator {accelerator!r} (`trainer.devices: {devices}`), but "
                f"`gpus_per_trial` is {gpus_per_trial}: each of the trial's {ranks} ranks needs a GPU of its own. "
                f"Set `gpus_per_trial: {ranks}` in OptimizationConfig, or `devices: 1`."
            )
        raise ConfigError(
            f"`gpus_per_trial` is {gpus_per_trial}, but the trainer uses 1 device (`trainer.devices: {devices}`): the other "
            f"reserved GPUs would stay idle. Set `devices: {gpus_per_trial:g}` (with `strategy: ddp`), or `gpus_per_trial: 1`."
        )
    if ranks > 1 and not gpu and cpus_per_trial < ranks:
        raise ConfigError(
            f"The trainer asks for {ranks} devices on accelerator {accelerator!r} (`trainer.devices: {devices}`), but "
            f"`cpus_per_trial` is {cpus_per_trial}: each of the trial's {ranks} ranks is a process that needs a CPU. "
            f"Set `cpus_per_trial: {ranks}` in OptimizationConfig, or `devices: 1`."
        )
    if ranks > 1:
        ddp_arguments(trainer.get("strategy", "auto"))  # a ConfigError for a strategy other than DDP
    return DeviceRequest(accelerator, ranks)


def trial_resources(ranks: int, cpus_per_trial: float, gpus_per_trial: float) -> Any:
    """What `tune.with_resources` reserves per trial: a dict for one rank, else N equal bundles."""
    if ranks <= 1:
        return {"cpu": cpus_per_trial, "gpu": gpus_per_trial}
    from ray.tune import PlacementGroupFactory

    bundle = {"CPU": cpus_per_trial / ranks}
    if gpus_per_trial:
        bundle["GPU"] = gpus_per_trial / ranks
    return PlacementGroupFactory([dict(bundle) for _ in range(ranks)])


def ddp_arguments(strategy: Any) -> Dict[str, Any]:
    """The DDP settings a trial's ``strategy`` carries (``find_unused_parameters``, ``timeout``, ...).

    ``auto``/``ddp*`` names and `DDPStrategy` class paths; any other strategy is a `ConfigError`.
    """
    from lightning.pytorch.strategies import DDPStrategy, StrategyRegistry

    strategy = _as_dict(strategy) if not isinstance(strategy, str) else strategy
    if strategy in (None, "auto"):
        return {}
    if isinstance(strategy, str) and strategy in StrategyRegistry and issubclass(StrategyRegistry[strategy]["strategy"], DDPStrategy):
        arguments = dict(StrategyRegistry[strategy]["init_params"])
    elif isinstance(strategy, Mapping) and _is_ddp_class(strategy.get("class_path"), DDPStrategy):
        arguments = dict(_as_dict(strategy.get("init_args")) or {})
    else:
        shown = strategy.get("class_path") if isinstance(strategy, Mapping) else strategy
        raise ConfigError(
            f"`trainer.strategy` is {shown!r}, but a trial on several devices runs its ranks with DDP. "
            "Set `strategy: ddp` (Lightning's DDPStrategy; its init_args are kept), or `devices: 1`."
        )
    return {key: value for key, value in arguments.items() if key not in _DROPPED_DDP_ARGUMENTS}


@dataclass(frozen=True)
class RankLayout:
    """Where the trial's ranks run: rank 0's address and port, and each rank's node (Ray node ids)."""

    address: str
    port: int
    nodes: Tuple[str, ...]

    @property
    def world_size(self) -> int:
        return len(self.nodes)

    def local_rank(self, rank: int) -> int:
        return self.nodes[:rank].count(self.nodes[rank])

    def node_rank(self, rank: int) -> int:
        return list(dict.fromkeys(self.nodes)).index(self.nodes[rank])

    def rank_config(self, trial_config: Mapping[str, Any], rank: int) -> Dict[str, Any]:
        """The trial config as ``rank`` builds it: one device, `RankDDPStrategy` with this layout."""
        config = dict(trial_config)
        trainer = dict(config.get("trainer") or {})
        environment = {
            "class_path": _RANK_ENVIRONMENT,
            "init_args": {
                "world_size": self.world_size,
                "global_rank": rank,
                "local_rank": self.local_rank(rank),
                "node_rank": self.node_rank(rank),
                "address": self.address,
                "port": self.port,
            },
        }
        strategy_args = {**ddp_arguments(trainer.get("strategy", "auto")), "cluster_environment": environment}
        trainer.update(devices=1, num_nodes=1, strategy={"class_path": _RANK_STRATEGY, "init_args": strategy_args})
        config["trainer"] = trainer
        return config


class RankGroup:
    """Ranks 1..N-1 of the running trial, as Ray actors in the trial's placement group bundles 1..N-1.

    `start` places them and fixes the layout; `fitting` runs their ``fit`` while rank 0 (the caller)
    runs its own, and ends them with it.
    """

    def __init__(self, actors: List[Any], layout: RankLayout) -> None:
        self.actors = actors
        self.layout = layout

    def own_config(self, trial_config: Mapping[str, Any]) -> Dict[str, Any]:
        """The trial config as rank 0 (the calling trial) builds it."""
        return self.layout.rank_config(trial_config, 0)

    @classmethod
    def start(cls, ranks: int) -> "RankGroup":
        import ray
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        group = ray.util.get_current_placement_group()
        if group is None or len(group.bundle_specs) < ranks:
            raise RuntimeError(
                f"This trial runs {ranks} ranks but holds no placement group of {ranks} bundles; "
                "its resources must come from `trial_resources` (ConfigDrivenOptimizer does this)."
            )
        actors: List[Any] = []
        for index in range(1, ranks):
            bundle = group.bundle_specs[index]
            actors.append(
                ray.remote(_Rank)
                .options(
                    num_cpus=bundle.get("CPU", 0),
                    num_gpus=bundle.get("GPU", 0),
                    max_restarts=0,
                    scheduling_strategy=PlacementGroupSchedulingStrategy(
                        placement_group=group, placement_group_bundle_index=index, placement_group_capture_child_tasks=True
                    ),
                )
                .remote()
            )
        try:
            started = ray.get([actor.node_id.remote() for actor in actors], timeout=RANKS_START_S)
        except ray.exceptions.GetTimeoutError:
            for actor in actors:
                ray.kill(actor)
            raise RankError(f"The trial's other ranks did not start within {RANKS_START_S:.0f} s; they were ended.") from None
        nodes = (ray.get_runtime_context().get_node_id(), *started)
        return cls(actors, RankLayout(ray.util.get_node_ip_address(), _free_port(), tuple(nodes)))

    @contextlib.contextmanager
    def fitting(self, spec: Any, trial_config: Mapping[str, Any], trial_dir: str, fit_arguments: Mapping[str, Any]) -> Iterator[None]:
        """Ranks 1..N-1 fit ``trial_config`` (with ``fit_arguments``) while the body runs rank 0's fit."""
        import ray

        fit_arguments = dict(fit_arguments)
        path = fit_arguments.get("ckpt_path")
        data = None
        if path and os.path.isfile(path) and any(node != self.layout.nodes[0] for node in self.layout.nodes):
            with open(path, "rb") as handle:
                data = ray.put(handle.read())  # for ranks on other nodes, which cannot read rank 0's file
        runs = [
            actor.fit.remote(spec, self.layout.rank_config(trial_config, rank), trial_dir, fit_arguments, data)
            for rank, actor in enumerate(self.actors, start=1)
        ]
        watcher = _RankWatcher(runs, self.actors)
        try:
            yield
            watcher.done.set()
            _wait_for_ranks(runs)
        except BaseException as err:
            watcher.done.set()
            _close_process_group()
            if watcher.failure is not None or _lost_a_peer(err):
                _raise_rank_error(runs)  # rank 0 failed because another rank did: that rank's error says why
            raise
        finally:
            watcher.done.set()
            _close_process_group()  # the worker may run another trial next
            for actor in self.actors:
                ray.kill(actor)


class _RankWatcher:
    """Ends every other rank's process as soon as one rank fails: their sockets close, so rank 0, waiting
    for it in a collective (gloo has no abort), fails at once instead of after the DDP timeout."""

    def __init__(self, runs: List[Any], actors: List[Any]) -> None:
        import threading

        self.runs, self.actors = runs, actors
        self.done = threading.Event()
        self.failure: Optional[BaseException] = None
        threading.Thread(target=self._watch, name="lightning-bohb-ranks", daemon=True).start()

    def _watch(self) -> None:
        import ray

        pending = list(self.runs)
        while pending and not self.done.is_set():
            ready, pending = ray.wait(pending, num_returns=1, timeout=1.0)
            for run in ready:
                try:
                    ray.get(run)
                except Exception as err:
                    if self.done.is_set():
                        return
                    self.failure = err
                    for actor in self.actors:
                        ray.kill(actor)
                    return


class OneRank:
    """A trial on one device: its config and fit as they are."""

    def own_config(self, trial_config: Mapping[str, Any]) -> Mapping[str, Any]:
        return trial_config

    def fitting(self, *args: Any) -> "contextlib.nullcontext[None]":
        return contextlib.nullcontext()


@contextlib.contextmanager
def trial_ranks(spec: Any) -> Iterator[Any]:
    """The trial's ranks: a `RankGroup` when ``spec.ranks > 1`` (ended with the trial), else `OneRank`."""
    if getattr(spec, "ranks", 1) <= 1:
        yield OneRank()
        return
    group = RankGroup.start(spec.ranks)
    try:
        yield group
    finally:
        import ray

        for actor in group.actors:
            ray.kill(actor)


class _Rank:
    """A rank other than 0 of one trial (a Ray actor): builds the trial's LightningCLI and fits."""

    def node_id(self) -> str:
        import ray

        return ray.get_runtime_context().get_node_id()

    def fit(self, spec: Any, config: Dict[str, Any], trial_dir: str, fit_arguments: Dict[str, Any], data: Any) -> None:
        import ray

        from lightning_bohb.core.trainable import (
            QUIET_TRAINER_DEFAULTS,
            _restore_environment,
            _working_directory,
            trial_callbacks,
            use_threads,
        )
        from lightning_bohb.core.worker_setup import quiet_trial_output
        from lightning_bohb.utils.imports import extend_import_path

        quiet_trial_output()
        extend_import_path(spec.sys_path, first=False)
        _restore_environment(spec.environment)
        use_threads(spec.threads)
        with _working_directory(trial_dir), tempfile.TemporaryDirectory(prefix="lightning_bohb_rank_") as tmp:
            if data is not None and not os.path.isfile(fit_arguments.get("ckpt_path") or ""):
                fit_arguments["ckpt_path"] = os.path.join(tmp, os.path.basename(fit_arguments["ckpt_path"]))
                with open(fit_arguments["ckpt_path"], "wb") as handle:
                    handle.write(ray.get(data))
            try:
                cli = spec.cli.build(config, trial_callbacks(spec), QUIET_TRAINER_DEFAULTS)
                cli.trainer.fit(cli.model, datamodule=cli.datamodule, **fit_arguments)
            except BaseException as err:  # rank 0's watcher ends this process once it has this error
                rank = config["trainer"]["strategy"]["init_args"]["cluster_environment"]["init_args"]["global_rank"]
                raise RankError(f"Rank {rank} of the trial failed: {err}\n{traceback.format_exc()}") from None


class RankError(RuntimeError):
    """A rank other than 0 of a trial failed; its traceback is in the message."""


def _wait_for_ranks(runs: List[Any]) -> None:
    """The other ranks' fits, once rank 0's has returned: `RankError` naming those not back within
    `RANKS_FINISH_S` (the caller then kills every rank actor)."""
    import ray

    _, late = ray.wait(runs, num_returns=len(runs), timeout=RANKS_FINISH_S)
    if late:
        ranks = ", ".join(str(runs.index(run) + 1) for run in late)
        raise RankError(
            f"Rank {ranks} of the trial did not finish within {RANKS_FINISH_S:.0f} s after rank 0 finished (it hangs); "
            "its process was ended and the trial failed."
        )
    ray.get(runs)


def _raise_rank_error(runs: List[Any]) -> None:
    import ray

    ready, _ = ray.wait(runs, num_returns=len(runs), timeout=30)
    for run in ready:
        try:
            ray.get(run)
        except ray.exceptions.RayActorError:
            continue  # ended by the watcher or with the trial: another rank's error says why
        except Exception as err:
            cause = getattr(err, "cause", None) or err
            raise RankError(str(cause)) from None


def _lost_a_peer(err: BaseException) -> bool:
    """Whether rank 0 failed in a collective whose other side went away (gloo's or NCCL's error)."""
    import torch.distributed

    return isinstance(err, getattr(torch.distributed, "DistError", ())) or "Connection closed by peer" in str(err)


def _close_process_group() -> None:
    import torch.distributed

    if torch.distributed.is_available() and torch.distributed.is_initialized():
        with contextlib.suppress(Exception):
            torch.distributed.destroy_process_group()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("", 0))
        return int(sock.getsockname()[1])


def _accelerator_name(accelerator: Any) -> str:
    if isinstance(accelerator, str):
        return accelerator.lower()
    class_path = _as_dict(accelerator).get("class_path") if accelerator is not None else None
    name = str(class_path or type(accelerator).__name__).rpartition(".")[2].lower()
    return "cuda" if name.startswith("cuda") else "cpu" if name.startswith("cpu") else name


def _explicit_devices(devices: Any) -> Optional[int]:
    if isinstance(devices, bool):
        return None
    if isinstance(devices, int):
        return devices
    if isinstance(devices, str) and devices.strip().lstrip("-").isdigit():
        return int(devices)
    return None


def _devices_per_node(devices: Any, gpu: bool, gpus_per_trial: float) -> int:
    if devices is None or devices == "auto":
        return int(gpus_per_trial) if gpu and gpus_per_trial >= 1 else 1
    count = _explicit_devices(devices)
    if count is None:  # a list or "0,1": device indices
        indices = devices if isinstance(devices, (list, tuple)) else str(devices).split(",")
        raise ConfigError(
            f"`trainer.devices` is {devices!r}, but which devices a trial gets is Ray's choice (it reserves them and "
            f"makes them the trial's only visible ones). Set `devices: {len(indices)}`."
        )
    if count < 0:
        raise ConfigError(
            f"`trainer.devices` is {count}, which means every device of the machine, but a trial uses what Ray reserves "
            f"for it. Set `devices: N` with `gpus_per_trial: N` (or `cpus_per_trial: N` on CPU)."
        )
    return max(count, 1)


def _is_ddp_class(class_path: Any, ddp: type) -> bool:
    if not isinstance(class_path, str):
        return False
    import importlib

    module, _, name = class_path.rpartition(".")
    try:
        value = getattr(importlib.import_module(module or "lightning.pytorch.strategies"), name)
    except (ImportError, AttributeError, ValueError):
        return False
    return isinstance(value, type) and issubclass(value, ddp)


def _as_dict(value: Any) -> Any:
    """A jsonargparse `Namespace` as a dict; anything else as it is."""
    return value.as_dict() if hasattr(value, "as_dict") else value


