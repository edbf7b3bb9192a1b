"""What runs inside one trial: build model, datamodule and Trainer from the merged config and fit."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

from lightning_bohb.core.base_config import apply_overrides
from lightning_bohb.core.worker_setup import quiet_trial_output
from lightning_bohb.utils.imports import extend_import_path, import_class
from lightning_bohb.utils.plain import to_plain

# Trainer settings that cost time or disk in every trial; applied only where the YAML is silent.
_QUIET_TRAINER_DEFAULTS = {
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "logger": False,
}


@dataclass
class TrialSpec:
    """Everything a trial needs besides its sampled values; picklable, sent once per trial."""

    base_config: Dict[str, Any]
    parameter_paths: Dict[str, str]
    max_epochs: int
    metric: str
    seed: Optional[int] = None
    control_name: Optional[str] = None
    check_interval: float = 1.0
    sys_path: List[str] = field(default_factory=list)
    """The driver's import path, so user classes the driver imports also import in trials."""

    def merged_config(self, values: Mapping[str, Any]) -> Dict[str, Any]:
        """The complete LightningCLI config of a trial with these sampled values."""
        merged = apply_overrides(self.base_config, values, self.parameter_paths)
        if self.seed is not None:
            merged["seed_everything"] = self.seed
        merged.setdefault("trainer", {})["max_epochs"] = self.max_epochs
        return merged


def instantiate(node: Any) -> Any:
    """Instantiate ``{class_path, init_args}`` mappings, recursively, as LightningCLI does."""
    if isinstance(node, dict):
        if "class_path" in node:
            cls = import_class(node["class_path"])
            return cls(**{k: instantiate(v) for k, v in (node.get("init_args") or {}).items()})
        return {k: instantiate(v) for k, v in node.items()}
    if isinstance(node, list):
        return [instantiate(v) for v in node]
    return node


def build_trainer_kwargs(trainer_config: Mapping[str, Any], callbacks: list) -> Dict[str, Any]:
    kwargs = {**_QUIET_TRAINER_DEFAULTS, **instantiate(dict(trainer_config))}
    user_callbacks = kwargs.get("callbacks") or []
    if not isinstance(user_callbacks, list):
        user_callbacks = [user_callbacks]
    kwargs["callbacks"] = user_callbacks + callbacks
    # The report callback is a Lightning Checkpoint; Lightning refuses one when this is False.
    kwargs["enable_checkpointing"] = True
    return kwargs


def train_trial(config: Dict[str, Any], spec: TrialSpec) -> None:
    """Ray Tune function trainable: one Lightning fit, resumed from Tune's checkpoint when present."""
    from lightning.pytorch import Trainer, seed_everything
    from ray import tune

    from lightning_bohb.callbacks import RNGStateCallback, TunePauseCallback, TuneReportCallback
    from lightning_bohb.callbacks.tune_report_callback import CHECKPOINT_FILE
    from lightning_bohb.pause.channel import ControlClient

    quiet_trial_output()
    extend_import_path(spec.sys_path, first=False)
    merged = spec.merged_config(to_plain(config))
    if merged.get("seed_everything") is not None:
        seed_everything(merged["seed_everything"], workers=True, verbose=False)
    model = instantiate(merged["model"])
    datamodule = instantiate(merged["data"]) if merged.get("data") else None

    control = ControlClient(spec.control_name) if spec.control_name else None
    callbacks = [
        RNGStateCallback(),
        TuneReportCallback(spec.metric),  # reports the checkpoint before the pause callback holds
        TunePauseCallback(check_interval=spec.check_interval, control=control),
    ]
    trainer_kwargs = build_trainer_kwargs(merged.get("trainer", {}), callbacks)
    trainer_kwargs.setdefault("default_root_dir", os.getcwd())
    trainer = Trainer(**trainer_kwargs)

    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        trainer.fit(model, datamodule=datamodule)
        return
    with checkpoint.as_directory() as checkpoint_dir:
        trainer.fit(model, datamodule=datamodule, ckpt_path=os.path.join(checkpoint_dir, CHECKPOINT_FILE))
