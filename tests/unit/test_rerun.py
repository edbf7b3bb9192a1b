"""`lightning_bohb.core.rerun`: the thread count a trial trains with, and the command in ``best_config.yaml``."""

import pytest
import torch
import yaml

from lightning_bohb.core.rerun import rerun_command, rerun_header, threads_of, trial_threads
from lightning_bohb.core.trainable import use_threads


@pytest.mark.parametrize(
    "cpus, ranks, environ, threads",
    [
        (1, 1, {}, 1),
        (2.5, 1, {}, 2),  # Ray rounds a worker's CPUs down
        (0.5, 1, {}, 1),  # and gives at least one thread
        (4, 2, {}, 2),  # each DDP rank reserves its share
        (1, 1, {"OMP_NUM_THREADS": "3"}, 3),  # the driver's own setting, which Ray's workers inherit
        (2, 1, {"OMP_NUM_THREADS": "0"}, 2),
        (2, 1, {"OMP_NUM_THREADS": "many"}, 2),
    ],
)
def test_trial_threads_follow_the_cpus_of_a_rank_or_the_drivers_setting(cpus, ranks, environ, threads):
    assert trial_threads(cpus, ranks, environ) == threads


def test_a_trial_sets_its_thread_count():
    before = torch.get_num_threads()
    try:
        use_threads(1)
        assert torch.get_num_threads() == 1
        use_threads(None)  # as the worker has it
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_the_header_names_the_command_and_lightning_cli_reads_past_it():
    text = rerun_header(4) + yaml.safe_dump({"trainer": {"max_epochs": 3}})
    assert "#   OMP_NUM_THREADS=4 python main.py fit --config best_config.yaml\n" in text
    assert threads_of(text) == 4 and yaml.safe_load(text) == {"trainer": {"max_epochs": 3}}
    assert threads_of("trainer:\n  max_epochs: 3\n") is None  # written before the header existed
    assert rerun_command(2, "my best.yaml") == "OMP_NUM_THREADS=2 python main.py fit --config 'my best.yaml'"
