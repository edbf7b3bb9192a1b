"""A trial's devices (``trainer.devices``/``accelerator``/``strategy``) against the resources it reserves:
mismatches fail in the driver, before Ray starts, with the fix; matches map to Ray's reservations."""

import pytest
import ray
from ray import tune

from lightning_bohb import ConfigDrivenOptimizer, OptimizationConfig, SearchSpace
from lightning_bohb.core.distributed import RankLayout, ddp_arguments, trial_resources
from lightning_bohb.exceptions import ConfigError


class Space(SearchSpace):
    def __init__(self, space=None):
        self.space = space or {"lr": tune.loguniform(1e-4, 1e-2)}

    def get_search_space(self):
        return self.space

    def get_metric_config(self):
        return {"metric": "val_loss", "mode": "min"}


def _optimizer(base_dict, space=None, **resources):
    return ConfigDrivenOptimizer(base_dict, Space(space), optimization_config=OptimizationConfig(**resources))


@pytest.mark.parametrize(
    "trainer, resources, fix",
    [
        ({"accelerator": "gpu", "devices": 2, "strategy": "ddp"}, {"gpus_per_trial": 1}, "its own. Set `gpus_per_trial: 2` in"),
        ({"accelerator": "gpu", "devices": 2, "strategy": "ddp"}, {}, "Set `gpus_per_trial: 2` in OptimizationConfig (one GPU per"),
        ({"accelerator": "cuda", "devices": 1}, {"gpus_per_trial": 2}, "Set `devices: 2` (with `strategy: ddp`), or `gpus_per_trial: 1`."),
        ({"accelerator": "cpu", "devices": 2, "strategy": "ddp"}, {}, "Set `cpus_per_trial: 2` in OptimizationConfig, or `devices: 1`."),
        ({"accelerator": "cpu", "devices": 2, "strategy": "fsdp"}, {"cpus_per_trial": 2}, "Set `strategy: ddp`"),
        ({"accelerator": "gpu", "devices": [0, 1]}, {"gpus_per_trial": 2}, "Set `devices: 2`."),
        ({"accelerator": "cpu", "devices": -1}, {}, "Set `devices: N` with `gpus_per_trial: N`"),
    ],
)
def test_a_trainer_asking_for_other_devices_than_reserved_fails_before_ray_with_the_fix(base_dict, trainer, resources, fix):
    base_dict["trainer"].update(trainer)
    with pytest.raises(ConfigError) as error:
        _optimizer(base_dict, **resources)
    assert fix in str(error.value)
    assert not ray.is_initialized()


def test_device_settings_cannot_be_searched(base_dict):
    with pytest.raises(ConfigError, match=r"`trainer.devices` is in the search space.*Fix it in the base config"):
        _optimizer(base_dict, space={"trainer.devices": tune.choice([1, 2])})


@pytest.mark.parametrize(
    "trainer, resources, ranks",
    [
        ({"accelerator": "cpu", "devices": 1}, {}, 1),
        ({"accelerator": "cpu", "devices": 2, "strategy": "ddp"}, {"cpus_per_trial": 2}, 2),
        ({"accelerator": "cpu", "devices": "2", "strategy": "auto"}, {"cpus_per_trial": 4}, 2),
        ({"accelerator": "gpu", "devices": "auto", "strategy": "ddp"}, {"gpus_per_trial": 2}, 2),
        ({"accelerator": "auto", "devices": "auto"}, {"gpus_per_trial": 3}, 3),
        ({"accelerator": "gpu", "devices": 1}, {"gpus_per_trial": 1}, 1),
        ({"accelerator": "gpu", "devices": 1}, {"gpus_per_trial": 0.5}, 1),  # GPUs shared by trials
    ],
)
def test_ranks_follow_the_trainer_and_the_trial_resources(base_dict, trainer, resources, ranks):
    base_dict["trainer"].update(trainer)
    optimizer = _optimizer(base_dict, **resources)
    assert optimizer.device_request().ranks == ranks
    assert optimizer.trial_spec().ranks == ranks


def test_several_ranks_reserve_one_equal_bundle_each():
    assert trial_resources(1, 2.0, 1.0) == {"cpu": 2.0, "gpu": 1.0}  # one device: as before
    factory = trial_resources(2, 4.0, 2.0)
    assert factory.bundles == [{"CPU": 2.0, "GPU": 1.0}, {"CPU": 2.0, "GPU": 1.0}]
    assert trial_resources(2, 2.0, 0.0).bundles == [{"CPU": 1.0}, {"CPU": 1.0}]


def test_ddp_settings_of_the_config_reach_every_rank():
    assert ddp_arguments("ddp") == {}
    assert ddp_arguments("ddp_find_unused_parameters_true") == {"find_unused_parameters": True}
    strategy = {"class_path": "lightning.pytorch.strategies.DDPStrategy", "init_args": {"static_graph": True, "start_method": "spawn"}}
    assert ddp_arguments(strategy) == {"static_graph": True}


def test_each_rank_builds_one_device_of_the_trials_world():
    layout = RankLayout("10.0.0.1", 29500, ("node-a", "node-a", "node-b", "node-b"))
    assert [layout.local_rank(rank) for rank in range(4)] == [0, 1, 0, 1]
    assert [layout.node_rank(rank) for rank in range(4)] == [0, 0, 1, 1]
    config = layout.rank_config({"trainer": {"devices": 4, "strategy": "ddp_find_unused_parameters_true", "num_nodes": 1}}, 3)
    strategy = config["trainer"]["strategy"]
    assert (config["trainer"]["devices"], config["trainer"]["num_nodes"]) == (1, 1)
    assert strategy["init_args"]["find_unused_parameters"] is True
    environment = strategy["init_args"]["cluster_environment"]["init_args"]
    assert environment == {"world_size": 4, "global_rank": 3, "local_rank": 1, "node_rank": 1, "address": "10.0.0.1", "port": 29500}
