"""The hooks of ``tune.run`` itself LightningTune uses: its interrupt event, its usage tag of the callbacks.

Each fails loudly, naming the Ray version, if a Ray upgrade changes what it touches;
`tests/unit/test_ray_internals.py` runs them against the installed Ray.
"""

from __future__ import annotations

import json
import signal
import threading
from typing import Dict


def tune_interrupt_event() -> threading.Event:
    """The event `ray.tune.run` checks to end its loop gracefully (what its SIGUSR1 handler sets).

    Setting it ends the run the way Tune's own Ctrl+C does: the loop stops, the experiment is
    snapshotted with unfinished trials still RUNNING, and they resume on restore. Call on the main
    thread while `tune.run` is set up (e.g. from a Tune callback's ``setup``).
    """
    import ray

    handler = signal.getsignal(signal.SIGUSR1)
    for cell in getattr(handler, "__closure__", None) or ():
        if isinstance(cell.cell_contents, threading.Event):
            return cell.cell_contents
    raise RuntimeError(
        f"Ray Tune {ray.__version__} no longer installs its interrupt handler the way lightning_bohb "
        "expects (an Event in the SIGUSR1 handler's closure). Pin ray[tune]==2.60.0 or upgrade lightning_bohb."
    )


_INTEGRATION_CALLBACKS = ("WandbLoggerCallback", "MLflowLoggerCallback", "CometLoggerCallback", "AimLoggerCallback")


def tag_callbacks_without_imports() -> None:
    """Tune's usage tag of a run's callbacks (`ray.air._internal.usage.tag_callbacks`, telemetry) imports
    Ray's W&B, MLflow, Comet and Aim integrations only to compare class names: 0.8 s of the driver's CPU
    before the first trial starts. This tags the same counts by class name, without those imports."""
    from ray.air._internal import usage

    if getattr(usage.tag_callbacks, "_lightning_bohb", False):
        return

    def tag_callbacks(callbacks) -> bool:
        from ray.tune import Callback
        from ray.tune.logger import LoggerCallback
        from ray.tune.utils.callback import DEFAULT_CALLBACK_CLASSES

        if not callbacks:
            return False
        known = {*_INTEGRATION_CALLBACKS, *(cls.__name__ for cls in DEFAULT_CALLBACK_CLASSES)}
        counts: Dict[str, int] = {}
        for callback in callbacks:
            if isinstance(callback, Callback):
                name = type(callback).__name__
                key = name if name in known else "CustomLoggerCallback" if isinstance(callback, LoggerCallback) else "CustomCallback"
                counts[key] = counts.get(key, 0) + 1
        if counts:
            usage.record_extra_usage_tag(usage.TagKey.AIR_CALLBACKS, json.dumps(counts))
        return bool(counts)

    tag_callbacks._lightning_bohb = True  # type: ignore[attr-defined]
    usage.tag_callbacks = tag_callbacks
