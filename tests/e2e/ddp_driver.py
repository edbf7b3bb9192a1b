"""A search whose one trial trains on 2 CPU ranks (DDP), in-process or as its own process (kill -9 tests).

``ddp_driver.py <experiment dir> <record dir>`` starts it; ``ddp_driver.py --resume-session <session>`` resumes it.
"""

import sys

import yaml

from e2e_support import REPO, LrSpace
from lightning_bohb import ConfigDrivenOptimizer, OptimizationConfig, TuneReflowCLI

EPOCHS = 4


def ddp_config(record_dir, min_epoch_seconds=0.0, **init_args):
    """The example config on 2 CPU ranks, with the rank-recording model."""
    config = yaml.safe_load((REPO / "examples" / "config.yaml").read_text())
    config["trainer"].update(accelerator="cpu", devices=2, strategy="ddp")
    config["model"]["class_path"] = "e2e_models.RankRecordingClassifier"
    config["model"]["init_args"].update(record_dir=str(record_dir), min_epoch_seconds=min_epoch_seconds, **init_args)
    return config


def ddp_optimizer(record_dir, min_epoch_seconds=0.0, **init_args):
    """One seeded trial of ``EPOCHS`` epochs on 2 ranks, each rank one CPU."""
    config = OptimizationConfig(max_epochs=EPOCHS, num_samples=1, seed=7, cpus_per_trial=2)
    return ConfigDrivenOptimizer(ddp_config(record_dir, min_epoch_seconds, **init_args), LrSpace(), None, config)


if __name__ == "__main__":
    if sys.argv[1] == "--resume-session":
        TuneReflowCLI.resume(session_dir=sys.argv[2]).run(resume=True)
    else:
        TuneReflowCLI("random", experiment_dir=sys.argv[1], enable_pause=False, verbose=False).run(ddp_optimizer(sys.argv[2], 1.0))
